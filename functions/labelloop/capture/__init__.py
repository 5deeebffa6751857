"""Invoke capture: which invokes are worth a human's look (strategies, decision, state)."""
