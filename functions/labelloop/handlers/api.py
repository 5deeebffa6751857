"""Lambda entry point of the HTTP API (API Gateway HTTP API, payload format 2.0)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from labelloop import afterwork
from labelloop.api import gate
from labelloop.api.app import app
from labelloop.container import deps
from labelloop.errors import DomainError
from labelloop.observability import of
from labelloop.settings import ApiSettings

# This function's environment (the stack sets exactly what it declares). The routers reach the
# same container through `deps()`, whose default is this class.
SETTINGS = ApiSettings

# In Lambda, registers the extension that writes invoke records after the response: this must
# happen during init (a no-op anywhere else).
afterwork.start_in_lambda()


def handler(event: dict, context: LambdaContext) -> dict:
    # Outermost, so that every invoke hands its work over, even none (a refusal at the gate, a
    # failure anywhere): the extension waits for that handoff, until the deadline if need be.
    with afterwork.collect(context.aws_request_id):
        return _handle(event, context)


@of("api").entry_point(SETTINGS)
def _handle(event: dict, context: LambdaContext) -> dict:
    try:
        settings = deps(SETTINGS).settings
        event = gate.admit(event, settings.max_image_body_bytes if gate.takes_images(event)
                           else settings.max_body_bytes)
    except DomainError as refused:
        return gate.refusal(refused)
    return app.resolve(event, context)
