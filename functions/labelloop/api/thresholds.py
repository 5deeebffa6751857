"""Routes of the decision policy: the thresholds report a policy is chosen from (precision–
coverage curves, recommendations), and the policy itself (set, clear). Ours, beside Nyckel's
API; invoke answers carry `decision` and `decisionThreshold` once a policy is set."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from labelloop.api import presenters as P
from labelloop.api import quality_presenters as QP
from labelloop.api.auth import client
from labelloop.api.routing import FN
from labelloop.container import deps
from labelloop.thresholds import ThresholdPolicy
from labelloop.usecases import thresholds as T

router = APIGatewayHttpRouter()


@router.get(FN + "/thresholds")
def get_thresholds(
    function_id: str,
    targetPrecision: Annotated[float | None, Query(gt=0, lt=1)] = None,
    modelVersion: Annotated[int | None, Query(ge=1)] = None,
    label: Annotated[str | None, Query(max_length=1024)] = None,
):
    """The live version's (or `modelVersion`'s) precision–coverage curve and, for
    `targetPrecision` (default: the policy's, else 0.95), the recommended accept threshold,
    overall and per label; `label` (a name or id) adds that label's curve."""
    r = T.report(deps(), client(router), function_id, targetPrecision, modelVersion, label)
    return P.respond(200, QP.thresholds_json(r))


@router.put(FN + "/thresholds")
def set_thresholds(function_id: str, body: ThresholdPolicy):
    """The decision policy, e.g. {"accept": {"targetPrecision": 0.95}, "review":
    {"confidence": 0.6}, "perLabel": {"<label name or id>": {"accept": {"confidence": 0.9}}}};
    answers as GET does (or only the policy while there is no model)."""
    d = deps()
    fn = T.set_policy(d, client(router), function_id, body)
    if fn.live is None:
        return P.respond(200, {"policy": QP.policy_json(fn.thresholds)})
    return P.respond(200, QP.thresholds_json(T.report(d, client(router), fn.id, None, None, None)))


@router.delete(FN + "/thresholds")
def clear_thresholds(function_id: str):
    """No policy: invokes carry no decision again."""
    T.clear_policy(deps(), client(router), function_id)
    return P.respond(200, {})
