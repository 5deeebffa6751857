"""The work queues (training, batch invoke), each with its DLQ and an alarm on the DLQ's depth."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.stage import StageSettings
from labelloop.resources import RESOURCES, QueueSpec, dlq_name


def construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class Queues(Construct):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings):
        super().__init__(scope, cid)
        self.specs: dict[str, QueueSpec] = {q.name: q for q in RESOURCES.queues}
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        self.alarm_topic = sns.Topic(self, "AlarmTopic",
                                     display_name=f"labelloop {settings.stage} alarms")
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subs.EmailSubscription(settings.alarm_email))
        for spec in RESOURCES.queues:
            dlq = sqs.Queue(
                self, f"{construct_id(spec.name)}Dlq",
                queue_name=RESOURCES.physical(settings.stage, dlq_name(spec)),
                retention_period=cdk.Duration.days(spec.dlq_retention_days),
                encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True)
            queue = sqs.Queue(
                self, f"{construct_id(spec.name)}Queue",
                queue_name=RESOURCES.physical(settings.stage, spec.name),
                visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout),
                encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receive_count,
                                                      queue=dlq))
            # A message in a DLQ is work that failed max_receive_count times: a person must
            # look (redrive it once fixed).
            alarm = cw.Alarm(
                self, f"{construct_id(spec.name)}DlqAlarm",
                alarm_description=f"labelloop {settings.stage}: messages in the {spec.name} DLQ",
                metric=dlq.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(5), statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
            self.queues[spec.name], self.dlqs[spec.name] = queue, dlq

    def environment(self) -> dict[str, str]:
        return {spec.env: self.queues[name].queue_url for name, spec in self.specs.items()}
