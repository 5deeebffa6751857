"""The HTTP API (API Gateway v2): one route per route of the app, all to the API function's
`live` alias. Authentication is the app's own (client credentials -> bearer tokens), so the
routes have no authorizer; unknown paths are refused by API Gateway before any Lambda runs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.stage import StageSettings
from labelloop.observability import NAMESPACE, service_name


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
                 target: lambda_.IFunction, alarm_topic: sns.ITopic):
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
        if settings.error_rate_alarm_percent is not None:
            self._error_rate_alarm(settings, alarm_topic)
        self._drift_alarm(settings, alarm_topic)

    def _drift_alarm(self, settings: StageSettings, alarm_topic: sns.ITopic) -> None:
        # Any function's drift score at or over its threshold: the API publishes DriftFlagged
        # (0 or 1) at every scoring under its service dimension alone (usecases/drift.py);
        # which function, the per-function DriftScore and GET …/drift say.
        metric = cw.Metric(namespace=NAMESPACE, metric_name="DriftFlagged",
                           dimensions_map={"service": service_name("api")},
                           statistic="Maximum", period=cdk.Duration.hours(1))
        self.drift_alarm = cw.Alarm(
            self, "DriftAlarm",
            alarm_description=f"labelloop {settings.stage}: a function's traffic drifted from "
                              "its live version's first invokes (GET …/drift)",
            metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        self.drift_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))

    def _error_rate_alarm(self, settings: StageSettings, alarm_topic: sns.ITopic) -> None:
        # Server errors (5xx: the function failed, timed out or was throttled by Lambda) as a
        # share of requests; quiet minutes are no breach.
        period = cdk.Duration.minutes(5)
        rate = cw.MathExpression(
            expression="100 * errors / MAX([requests, 1])", period=period,
            label="5xx, % of requests", using_metrics={
                "errors": self.api.metric_server_error(period=period, statistic="Sum"),
                "requests": self.api.metric_count(period=period, statistic="Sum")})
        self.error_alarm = cw.Alarm(
            self, "ErrorRateAlarm",
            alarm_description=f"labelloop {settings.stage}: more than "
                              f"{settings.error_rate_alarm_percent:g} % of API requests answered "
                              "5xx, two 5-minute periods running",
            metric=rate, threshold=settings.error_rate_alarm_percent, evaluation_periods=2,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        self.error_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
