"""Routes of invoking a function: one invoke, and the stored invokes (paged, newest first)."""

from __future__ import annotations

import time
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN, image_links, next_link
from labelloop.api.schemas import InvokeIn
from labelloop.container import deps
from labelloop.observability import MetricUnit, of, per_function
from labelloop.usecases import invoke as I
from labelloop.usecases import samples as S

router = APIGatewayHttpRouter()


@router.post(FN + "/invoke")
def invoke(
    function_id: str,
    body: InvokeIn,
    labelCount: Annotated[int | None, Query(ge=1)] = None,
    includeMetadata: Annotated[bool, Query()] = False,
    capture: Annotated[bool, Query()] = True,
    modelId: Annotated[str | None, Query()] = None,
    externalId: Annotated[str | None, Query()] = None,
):
    # `Cache-Control: no-cache` (or no-store): the encoder runs, whatever was seen before.
    directives = (router.current_event.headers or {}).get("cache-control", "").lower()
    cached = not ("no-cache" in directives or "no-store" in directives)
    started = time.perf_counter()
    result = I.invoke(deps(), client(router), function_id, body.data, externalId, modelId,
                      capture, cached)
    of("api").metrics.add_metric(name="Invokes", unit=MetricUnit.Count, value=1)
    # Per function: CloudWatch then shows each one's rate, latency percentiles, confidence
    # distribution (percentiles of InvokeConfidence) and cache hit rate.
    values = {"Invokes": (MetricUnit.Count, 1),
              "InvokeLatency": (MetricUnit.Milliseconds, (time.perf_counter() - started) * 1e3),
              "InvokeConfidence": (MetricUnit.NoUnit, result.prediction.confidence)}
    headers = {}
    if result.cache_hit is not None:
        values["InvokeCacheHits"] = (MetricUnit.Count, int(result.cache_hit))
        headers["X-Labelloop-Cache"] = "hit" if result.cache_hit else "miss"
    per_function("api", result.view.function.id, values)
    return P.respond(200, P.invoke_json(result, labelCount, includeMetadata), headers)


@router.get(FN + "/invokes")
def recent_invokes(
    function_id: str,
    batchSize: Annotated[int, Query(ge=1, le=S.MAX_PAGE)] = 100,
    after: Annotated[str | None, Query()] = None,
):
    """Stored invokes, newest first, within the function's invoke retention."""
    records, next_after = I.recent_invokes(deps(), client(router), function_id, batchSize,
                                           after)
    return P.respond(200, [P.invoke_record_json(r, image_links(router)) for r in records],
                     next_link(router, {"batchSize": batchSize}, next_after))
