"""Lambda entry point of the HTTP API (API Gateway HTTP API, payload format 2.0)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from labelloop.api.app import app, logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
