"""Drift signals: per-function counters of what the live version meets (the label mix of its
predictions, their confidences, the share of inputs far from every training sample), kept in
the container and flushed with the deferred work, and a drift score against the version's first
invokes (population stability index)."""
