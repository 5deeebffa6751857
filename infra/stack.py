"""The stack: one construct per capability, wired together, and the outputs a user needs."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.api import HttpApi
from infra.compute import Compute
from infra.data import Data
from infra.queues import Queues
from infra.stage import StageSettings
from infra.training_task import TrainingTask


class LabelloopStack(cdk.Stack):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings, **kwargs):
        super().__init__(scope, cid, description="labelloop: classification functions with "
                         f"integrated active learning (stage {settings.stage})", **kwargs)
        self.settings = settings
        self.data = Data(self, "Data", settings)
        self.queues = Queues(self, "Queues", settings)
        self.training_task = (TrainingTask(self, "TrainingTask", settings, self.data,
                                           self.queues)
                              if settings.fargate_training else None)
        self.compute = Compute(
            self, "Compute", settings, self.data, self.queues,
            extra_env=self.training_task.environment() if self.training_task else None)
        if self.training_task:
            self.training_task.allow_start(self.compute.training.function)
        self.api = HttpApi(self, "Api", settings, self.compute.api.alias,
                           self.queues.alarm_topic)

        outputs = {
            "ApiUrl": self.api.api.api_endpoint,
            "TableName": self.data.tables["main"].table_name,
            "InvokesTableName": self.data.tables["invokes"].table_name,
            "BucketName": self.data.bucket.bucket_name,
            "TrainingQueueUrl": self.queues.queues["training"].queue_url,
            "BatchQueueUrl": self.queues.queues["batch-invoke"].queue_url,
            "SigningSecretName": self.data.secret_name,
            "AlarmTopicArn": self.queues.alarm_topic.topic_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
