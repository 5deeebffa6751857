"""Routes of invoking a function: one invoke, and the stored invokes (paged, newest first)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN, image_links, next_link
from labelloop.api.schemas import InvokeIn
from labelloop.container import deps
from labelloop.observability import MetricUnit, of
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
    result = I.invoke(deps(), client(router), function_id, body.data, externalId, modelId,
                      capture)
    of("api").metrics.add_metric(name="Invokes", unit=MetricUnit.Count, value=1)
    return P.respond(200, P.invoke_json(result, labelCount, includeMetadata))


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
