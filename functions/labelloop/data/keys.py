"""Key shapes of the main table and the invokes table (docs/storage.md draws them)."""

from __future__ import annotations


def fn(fid: str) -> str:
    """The partition of everything a function owns."""
    return f"FN#{fid}"


def buf(fid: str, strategy: str) -> str:
    """gsi2's partition of one capture strategy's buffer."""
    return f"BUF#{fid}#{strategy}"


def priority_key(priority: float | None, sid: str) -> str:
    # Priorities are in [0, 1]: fixed-point text sorts as the number does.
    return f"{priority or 0.0:.9f}#{sid}"


def client(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def model(version: int) -> str:
    return f"MODEL#{version:08d}"
