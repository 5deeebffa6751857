"""Pieces every use case shares: ownership checks and the debounced training request."""

from __future__ import annotations

import time
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from labelloop.container import Deps
from labelloop.domain import FunctionItem
from labelloop.errors import Conflict, NotFound
from labelloop.ids import bare, full


class TrainingMessage(BaseModel):
    """The training queue's message body."""

    model_config = ConfigDict(extra="ignore")

    functionId: str
    reason: str = ""
    force: bool = False


def prefix_conflict(err: Conflict, key: str, kind: str) -> Conflict:
    """The store names existing items by bare id; the API shows them prefixed."""
    if err.extra.get(key):
        err.extra[key] = full(err.extra[key], kind)
    return err


@contextmanager
def prefixed_conflict(key: str, kind: str):
    try:
        yield
    except Conflict as err:
        prefix_conflict(err, key, kind)
        raise


def owned_function(d: Deps, client: str, function_id: str) -> FunctionItem:
    """The function, if this client owns it. Another client's function reads as missing."""
    fn = d.functions.find(bare(function_id, "function"))
    if fn is None or fn.client != client:
        raise function_not_found(function_id)
    return fn


def function_not_found(function_id: str) -> NotFound:
    """The same answer whether nobody or another client has the function: no existence
    oracle."""
    return NotFound(f"function {function_id!r} not found")


def is_training(d: Deps, fn: FunctionItem, now: float | None = None) -> bool:
    return fn.is_training(time.time() if now is None else now,
                          d.settings.training_stale_seconds)


def request_training(d: Deps, fid: str, reason: str, force: bool = False,
                     debounced: bool = True) -> None:
    """Queue a training run after the debounce window, unless one is queued already: a burst
    of changes (an import of thousands of samples) trains once, after the burst. Not
    `debounced` (a user asking for a run: the burst is over), it starts at once."""
    now = time.time()
    stale = now - max(10 * d.settings.train_debounce_seconds, 300)
    requested = d.functions.request_training(fid, now, stale)
    if requested:
        # This container's view was read before the request: reread, it shows the run
        # coming, and invokes follow the live pointer until the run is over (serving.py).
        d.serving.invalidate(fid)
    if requested or force:
        body = TrainingMessage(functionId=fid, reason=reason, force=force)
        d.queues.send_training_message(body.model_dump(),
                                       0 if force or not debounced
                                       else d.settings.train_debounce_seconds)
