"""Use cases: model versions, and moving the `live` pointer by hand (promote, rollback)."""

from __future__ import annotations

from labelloop.container import Deps
from labelloop.domain import FunctionItem, LabelItem, ModelVersionItem
from labelloop.errors import Conflict
from labelloop.ml.quality import Quality
from labelloop.usecases.common import owned_function, request_training
from labelloop.usecases.thresholds import record_thresholds


def list_versions(d: Deps, client: str, function_id: str) -> tuple[list[ModelVersionItem],
                                                                   int | None]:
    fn = owned_function(d, client, function_id)
    return d.model_versions.list(fn.id), fn.live


def get_version(d: Deps, client: str, function_id: str, version: int) -> ModelVersionItem:
    fn = owned_function(d, client, function_id)
    return d.model_versions.get(fn.id, version)


def version_quality(d: Deps, fn: FunctionItem, version: int
                    ) -> tuple[Quality | None, dict[str, LabelItem]]:
    """A version's measured quality (None for zero-shot versions) and the labels now."""
    labels = {lb.id: lb for lb in d.labels.list(fn.id, consistent=False)}
    return d.serving.model(fn.id, version).quality, labels


def promote(d: Deps, client: str, function_id: str, version: int) -> int:
    fn = owned_function(d, client, function_id)
    d.model_versions.get(fn.id, version)  # NotFound if it does not exist
    if fn.live != version:
        d.functions.set_live(fn.id, version, fn.live, [*fn.live_history, version])
        d.model_versions.mark_promoted(fn.id, version, "promoted by hand", True)
        _record(d, fn.id, version, fn.live)
    d.serving.invalidate(fn.id)
    return version


def rollback(d: Deps, client: str, function_id: str) -> int:
    """Back to the version that was live before the current one."""
    fn = owned_function(d, client, function_id)
    if len(fn.live_history) < 2:
        raise Conflict("no earlier live version to roll back to")
    previous = fn.live_history[-2]
    d.functions.set_live(fn.id, previous, fn.live, fn.live_history[:-1])
    _record(d, fn.id, previous, fn.live)
    d.serving.invalidate(fn.id)
    return previous


def _record(d: Deps, fid: str, version: int, was: int | None) -> None:
    record_thresholds(d, fid, d.serving.model(fid, version),
                      d.serving.model(fid, was) if was is not None else None)


def train(d: Deps, client: str, function_id: str, force: bool) -> None:
    fn = owned_function(d, client, function_id)
    request_training(d, fn.id, "requested", force=force, debounced=False)
