"""The HTTP API (API Gateway v2): one route per route of the app, all to the API function's
`live` alias. Authentication is the app's own (client credentials -> bearer tokens), so the
routes have no authorizer; unknown paths are refused by API Gateway before any Lambda runs."""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.stage import StageSettings


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, paths in API Gateway's `{param}` form."""
    import json

    from labelloop.api.app import app
    from labelloop.api.openapi import document

    routes = []
    for path, item in json.loads(document(app))["paths"].items():
        for method in item:
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}:
                routes.append((method.upper(), path))
    return sorted(routes)


class HttpApi(Construct):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings,
                 target: lambda_.IFunction):
        super().__init__(scope, cid)
        self.api = apigw.HttpApi(
            self, "HttpApi", api_name=f"labelloop-{settings.stage}",
            description="labelloop: Nyckel-compatible classification functions",
            create_default_stage=False)
        self.stage = apigw.HttpStage(
            self, "DefaultStage", http_api=self.api, stage_name="$default", auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=settings.throttle_rate,
                                            burst_limit=settings.throttle_burst))
        integration = integrations.HttpLambdaIntegration(
            "Api", target, payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0)
        for method, path in app_routes():
            self.api.add_routes(path=path, methods=[apigw.HttpMethod(method)],
                                integration=integration)
