"""Routes of a function's labels: create, list, read, update, delete."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api.auth import client
from labelloop.api.routing import FN
from labelloop.api.schemas import LabelIn
from labelloop.container import deps
from labelloop.usecases import labels as L

router = APIGatewayHttpRouter()
LABEL = FN + "/labels/<label_id>"


@router.post(FN + "/labels")
def create_label(function_id: str, body: LabelIn):
    lb = L.create_label(deps(), client(router), function_id, body.name, body.description,
                        body.metadata)
    return P.respond(200, P.label_json(lb))


@router.get(FN + "/labels")
def list_labels(function_id: str):
    return P.respond(200, [P.label_json(lb)
                           for lb in L.list_labels(deps(), client(router), function_id)])


@router.get(LABEL)
def get_label(function_id: str, label_id: str):
    return P.respond(200, P.label_json(L.get_label(deps(), client(router), function_id,
                                                   label_id)))


@router.put(LABEL)
def update_label(function_id: str, label_id: str, body: LabelIn):
    lb = L.update_label(deps(), client(router), function_id, label_id, body.name,
                        body.description, body.metadata)
    return P.respond(200, P.label_json(lb))


@router.delete(LABEL)
def delete_label(function_id: str, label_id: str):
    L.delete_label(deps(), client(router), function_id, label_id)
    return P.respond(200, {})
