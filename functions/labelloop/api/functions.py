"""Routes of functions: create, list, read, update, delete (v1), and Nyckel's v0.9 function
with its training state, and its metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN
from labelloop.api.schemas import FunctionIn, FunctionPatch
from labelloop.container import deps
from labelloop.usecases import functions as F

router = APIGatewayHttpRouter()


@router.post("/v1/functions")
def create_function(body: FunctionIn):
    fn = F.create_function(deps(), client(router), body.name, body.input, body.output,
                           body.storeInvokes, body.invokeRetentionDays, body.encoder)
    return P.respond(200, P.function_json(fn))


@router.get("/v1/functions")
def list_functions():
    return P.respond(200, [P.function_json(f) for f in F.list_functions(deps(), client(router))])


@router.get(FN)
def get_function(function_id: str):
    return P.respond(200, P.function_json(F.owned_function(deps(), client(router), function_id)))


@router.put(FN)
def update_function(function_id: str, body: FunctionPatch):
    fn = F.update_function(deps(), client(router), function_id, name=body.name,
                           store_invokes=body.storeInvokes,
                           invoke_retention_days=body.invokeRetentionDays, encoder=body.encoder)
    return P.respond(200, P.function_json(fn))


@router.delete(FN)
def delete_function(function_id: str):
    F.delete_function(deps(), client(router), function_id)
    return P.respond(200, {})


@router.get("/v0.9/functions/<function_id>")
def function_v09(function_id: str):
    d = deps()
    fn = F.owned_function(d, client(router), function_id)
    zero_shot = d.serving.model(fn.id, fn.live).head.zero_shot if fn.live else None
    return P.respond(200, {**P.function_json(fn), "state": F.function_state(d, fn, zero_shot)})


@router.get("/v0.9/functions/<function_id>/metrics")
def function_metrics(function_id: str):
    return P.respond(200, F.metrics(deps(), client(router), function_id))
