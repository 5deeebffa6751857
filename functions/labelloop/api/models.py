"""Routes of training and model versions: queue a training, list and read versions (with
their cross-validated quality), promote one, roll back to the previous live one."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api import quality_presenters as QP
from labelloop.api.auth import client
from labelloop.api.routing import FN
from labelloop.api.schemas import TrainIn
from labelloop.container import deps
from labelloop.usecases import functions as F
from labelloop.usecases import model_versions as M

router = APIGatewayHttpRouter()
MODELS = FN + "/models"
Version = Annotated[int, Path(ge=1, lt=10**8)]  # a model version


@router.post(FN + "/train")
def train(function_id: str, body: TrainIn):
    M.train(deps(), client(router), function_id, body.force)
    return P.respond(200, {"queued": True, "force": body.force})


@router.get(MODELS)
def list_models(function_id: str):
    versions, live = M.list_versions(deps(), client(router), function_id)
    return P.respond(200, [P.model_version_json(v, live) for v in versions])


@router.get(MODELS + "/<version>")
def get_model(function_id: str, version: Version):
    """The version, with its cross-validated quality: per-label precision, recall and F1,
    the most confused label pairs, the confusion matrix."""
    d = deps()
    fn = F.owned_function(d, client(router), function_id)
    mv = M.get_version(d, client(router), function_id, version)
    quality, labels = M.version_quality(d, fn, version)
    return P.respond(200, {**P.model_version_json(mv, fn.live),
                           "quality": QP.quality_json(quality, labels),
                           "thresholds": QP.version_thresholds_json(mv.thresholds)})


@router.post(MODELS + "/<version>/promote")
def promote(function_id: str, version: Version):
    return P.respond(200, {"live": M.promote(deps(), client(router), function_id, version)})


@router.post(MODELS + "/rollback")
def rollback(function_id: str):
    return P.respond(200, {"live": M.rollback(deps(), client(router), function_id)})
