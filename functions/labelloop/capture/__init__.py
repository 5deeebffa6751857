"""Invoke capture: which invokes are worth a human's look (strategies, policy, decision, state)."""
