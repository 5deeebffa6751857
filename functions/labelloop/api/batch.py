"""Routes of batch invoke: submit a job, read its status, read its results (paged by part)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN
from labelloop.api.schemas import Body
from labelloop.container import deps
from labelloop.domain import BatchJobItem
from labelloop.ids import full
from labelloop.usecases import batch as B

router = APIGatewayHttpRouter()
JOBS = FN + "/batch-invokes"


class BatchItemIn(Body):
    id: str | None = Field(None, max_length=1024)
    # Only its type is checked here; an empty text gets an error line, like any bad item.
    data: str


class BatchInvokeIn(Body):
    items: list[BatchItemIn] = Field(min_length=1, max_length=B.MAX_ITEMS)
    capture: bool = True


def job_json(job: BatchJobItem) -> dict:
    return P.compact({
        "id": job.id, "functionId": full(job.function_id, "function"), "state": job.state,
        "total": job.total if job.total is not None else job.processed,
        "processed": job.processed, "failed": job.failed, "parts": job.parts,
        "partsDone": job.parts_done, "partsFailed": job.parts_failed, "capture": job.capture,
        "createdAt": P.iso(job.created_at), "updatedAt": P.iso(job.updated_at),
        "lastError": job.last_error,
        "resultsPrefix": deps().objects.results_uri(job.function_id, job.id),
    })


@router.post(JOBS)
def submit(function_id: str, body: BatchInvokeIn):
    items = [i.model_dump(exclude_none=True) for i in body.items]
    job = B.submit(deps(), client(router), function_id, items, body.capture)
    return P.respond(200, job_json(job))


@router.get(JOBS + "/<job_id>")
def status(function_id: str, job_id: str):
    return P.respond(200, job_json(B.get_job(deps(), client(router), function_id, job_id)))


@router.get(JOBS + "/<job_id>/results")
def results(function_id: str, job_id: str,
            after: Annotated[int | None, Query(ge=0)] = None):
    """`{"results": [...], "next": part | absent}`; pass `after=<next>` for the next page (also
    given as a `Link: <…>; rel="next"` header). Finished parts only: poll the status first."""
    lines, next_after = B.results(deps(), client(router), function_id, job_id, after)
    headers = {}
    if next_after is not None:
        headers["Link"] = f'<{router.current_event.path}?after={next_after}>; rel="next"'
    return P.respond(200, P.compact({"results": lines, "next": next_after}), headers)
