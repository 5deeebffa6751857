"""The Fargate training path: a task definition running the training entry point
(`labelloop.handlers.training_task`) for functions too large for the training Lambda. The
training Lambda starts it (RunTask) when a function has at least `fargate_min_samples`
annotated samples, passing the training message in the container's environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.compute import READ, WRITE, table_arns
from infra.data import Data
from infra.environment import environment
from infra.queues import Queues
from infra.stage import RETENTION, ROOT, StageSettings
from labelloop.settings import TrainingTaskSettings

CONTAINER = "training"


class TrainingTask(Construct):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings, data: Data,
                 queues: Queues):
        super().__init__(scope, cid)
        # Public subnets and a public IP, no NAT gateway: the task only calls AWS APIs, and a
        # NAT would cost more per month than the training it serves.
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc)
        self.security_group = ec2.SecurityGroup(
            self, "TaskSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
            description="labelloop training task: outbound only")
        self.task = ecs.FargateTaskDefinition(
            self, "Task", cpu=settings.fargate_cpu, memory_limit_mib=settings.fargate_memory_mb,
            runtime_platform=ecs.RuntimePlatform(
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
                cpu_architecture=(ecs.CpuArchitecture.ARM64 if settings.arm64
                                  else ecs.CpuArchitecture.X86_64)))
        image = ecs.ContainerImage.from_asset(
            str(ROOT), file="infra/training.Dockerfile", ignore_mode=cdk.IgnoreMode.DOCKER,
            exclude=["*", "!pyproject.toml", "!README.md", "!functions", "!infra",
                     "functions/**/__pycache__", "functions/*.egg-info"],
            platform=(ecr_assets.Platform.LINUX_ARM64 if settings.arm64
                      else ecr_assets.Platform.LINUX_AMD64))
        self.task.add_container(
            CONTAINER, image=image, environment=environment(
                TrainingTaskSettings, {**data.environment(), **queues.environment()},
                "the Fargate training task"),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="training", log_retention=getattr(
                    logs.RetentionDays, RETENTION[settings.log_retention_days])))
        role = self.task.task_role
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=READ + WRITE, resources=table_arns(data.tables["main"])))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[data.bucket.arn_for_objects("functions/*")]))
        # A run that finds its function training already queues its request again.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sqs:SendMessage"], resources=[queues.queues["training"].queue_arn]))

    def environment(self) -> dict[str, str]:
        """What the training Lambda needs to start the task."""
        return {"LABELLOOP_TRAINING_CLUSTER": self.cluster.cluster_arn,
                "LABELLOOP_TRAINING_TASK_DEFINITION": self.task.task_definition_arn,
                "LABELLOOP_TRAINING_CONTAINER": CONTAINER,
                "LABELLOOP_TRAINING_SUBNETS": cdk.Fn.join(",", [s.subnet_id for s in
                                                            self.vpc.public_subnets]),
                "LABELLOOP_TRAINING_SECURITY_GROUP": self.security_group.security_group_id}

    def allow_start(self, function) -> None:
        """The training Lambda may run this task and hand it its roles, nothing else."""
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"], resources=[self.task.task_definition_arn],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}))
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[self.task.task_role.role_arn, self.task.obtain_execution_role().role_arn]))
