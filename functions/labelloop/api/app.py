"""The resolver, composed: middleware, then the routers, one per resource (each route:
authenticated by the middleware, validated by pydantic, one use case, presented), then the
OpenAPI description of them all. Domain errors map to HTTP in api/errors.py, once."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from labelloop.api import (
    auth,
    batch,
    console,
    docs,
    errors,
    functions,
    headers,
    invoke,
    labels,
    models,
    review,
    samples,
    thresholds,
    tokens,
)
from labelloop.api import openapi as OA
from labelloop.observability import of

logger = of("api").logger
app = APIGatewayHttpResolver(enable_validation=True)
app.use(middlewares=[headers.secure, auth.authenticate])
app.include_router(errors.router)  # exception handlers only

# Registration order is the order of the paths in the OpenAPI document: keep it, and the
# published document does not reshuffle. (Routes never overlap, so it does not decide which
# route answers.)
for resource in (review, thresholds, batch, console, tokens, docs, functions, labels, samples,
                 invoke, models):
    app.include_router(resource.router)

# Last: the document describes every route registered above.
OA.describe(app)
