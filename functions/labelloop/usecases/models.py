"""Use cases: model versions, and moving the `live` pointer by hand (promote, rollback)."""

from __future__ import annotations

from labelloop.container import Deps
from labelloop.domain import ModelVersionItem
from labelloop.errors import Conflict
from labelloop.usecases.common import owned_function, request_training


def list_versions(d: Deps, client: str, function_id: str) -> tuple[list[ModelVersionItem],
                                                                   int | None]:
    fn = owned_function(d, client, function_id)
    return d.store.list_model_versions(fn.id), fn.live


def get_version(d: Deps, client: str, function_id: str, version: int) -> ModelVersionItem:
    fn = owned_function(d, client, function_id)
    return d.store.get_model_version(fn.id, version)


def promote(d: Deps, client: str, function_id: str, version: int) -> int:
    fn = owned_function(d, client, function_id)
    d.store.get_model_version(fn.id, version)  # NotFound if it does not exist
    if fn.live != version:
        d.store.set_live(fn.id, version, fn.live, [*fn.live_history, version])
        d.store.mark_promoted(fn.id, version, "promoted by hand", True)
    d.serving.invalidate(fn.id)
    return version


def rollback(d: Deps, client: str, function_id: str) -> int:
    """Back to the version that was live before the current one."""
    fn = owned_function(d, client, function_id)
    if len(fn.live_history) < 2:
        raise Conflict("no earlier live version to roll back to")
    previous = fn.live_history[-2]
    d.store.set_live(fn.id, previous, fn.live, fn.live_history[:-1])
    d.serving.invalidate(fn.id)
    return previous


def train(d: Deps, client: str, function_id: str, force: bool) -> None:
    fn = owned_function(d, client, function_id)
    request_training(d, fn.id, "requested", force=force)
