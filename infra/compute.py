"""The Lambda functions (API/invoke, training worker, batch-invoke worker), their layers, the
`live` alias each is reached through, the queues' event sources, and least-privilege IAM."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.data import Data
from infra.environment import environment
from infra.queues import Queues, construct_id
from infra.stage import RETENTION, ROOT, StageSettings
from labelloop.data.objects import BATCH_PREFIX, INPUT_PREFIX, image_key
from labelloop.resources import RESOURCES

# What each handler does to each table (transactions are authorised per contained action).
READ = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
         "dynamodb:BatchWriteItem"]
# Layer -> its description ("labelloop <layer>: …"; tests read the name back from it).
LAYER_DESCRIPTIONS = {
    "runtime": "invoke-path packages (no scikit-learn, no scipy)",
    "encoder": "encoders: /opt/encoder (ONNX, tokenizer), /opt/encoder-accurate "
               "(tokenizer; its model is an S3 asset), /opt/encoder-image (ONNX)",
    "training": "training packages (scikit-learn, scipy, numpy; no onnxruntime), pruned"}
# Never shipped to Lambda: the local stack (moto), the CLI (it runs on the user's machine),
# caches, build metadata.
CODE_EXCLUDE = ["**/__pycache__", "*.egg-info", "labelloop/local", "labelloop/cli"]


class Worker(Construct):
    """One function published as a version behind the `live` alias."""

    def __init__(self, scope: Construct, cid: str, settings: StageSettings, *, name: str,
                 handler: str, memory_mb: int, timeout: cdk.Duration,
                 layers: list[lambda_.ILayerVersion], environment: dict[str, str]):
        super().__init__(scope, cid)
        function_name = f"labelloop-{settings.stage}-{name}"
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/lambda/{function_name}",
            retention=getattr(logs.RetentionDays, RETENTION[settings.log_retention_days]),
            removal_policy=cdk.RemovalPolicy.DESTROY)
        self.function = lambda_.Function(
            self, "Function", function_name=function_name,
            runtime=lambda_.Runtime(f"python{settings.lambda_python}",
                                    lambda_.RuntimeFamily.PYTHON),
            architecture=(lambda_.Architecture.ARM_64 if settings.arm64
                          else lambda_.Architecture.X86_64),
            handler=handler, code=lambda_.Code.from_asset(str(ROOT / "functions"),
                                                          exclude=CODE_EXCLUDE),
            layers=layers, memory_size=memory_mb, timeout=timeout, log_group=log_group,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing else lambda_.Tracing.DISABLED)
        # Routes and event sources target the alias: a deploy publishes a version and moves
        # `live`; in-flight work finishes on the version it started on.
        self.alias = lambda_.Alias(self, "Live", alias_name="live",
                                   version=self.function.current_version)

    def allow(self, actions: list[str], resources: list[str]) -> None:
        self.function.add_to_role_policy(iam.PolicyStatement(actions=actions,
                                                             resources=resources))


def table_arns(table) -> list[str]:
    return [table.table_arn, f"{table.table_arn}/index/*"]


class Compute(Construct):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings, data: Data,
                 queues: Queues, extra_env: dict[str, str] | None = None):
        """`extra_env`: more values a function's settings may declare (the Fargate task's,
        which only the training function's do)."""
        super().__init__(scope, cid)

        python = lambda_.Runtime(f"python{settings.lambda_python}", lambda_.RuntimeFamily.PYTHON)
        layers = {name: lambda_.LayerVersion(
            self, f"{name.capitalize()}Layer", description=f"labelloop {name}: {what}",
            code=lambda_.Code.from_asset(str(settings.layer_dir(name))),
            compatible_runtimes=[python]) for name, what in LAYER_DESCRIPTIONS.items()}
        # Every value the stack has for the functions; each takes what its settings model
        # declares (resources.py names the model).
        available = {**data.environment(), **queues.environment(),
                     "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": str(settings.train_debounce_seconds),
                     "LABELLOOP_INVOKE_RETENTION_DAYS": str(settings.invoke_retention_days),
                     "LABELLOOP_HELD_INVOKES": str(settings.held_invokes),
                     "LABELLOOP_DEFAULT_ENCODER": settings.default_encoder,
                     "LABELLOOP_FARGATE_MIN_SAMPLES": str(settings.fargate_min_samples),
                     # Pictures go to clients straight from the bucket, not through Lambda.
                     "LABELLOOP_IMAGE_LINKS": "presigned",
                     **({"LABELLOOP_TRACING": "true"} if settings.tracing else {}),
                     **(extra_env or {})}
        # The accurate encoder's model (110 MB) would put a function over 250 MB with its
        # layers: an S3 asset instead, fetched to /tmp on a container's first use of it.
        accurate_model = None
        if (settings.layer_dir("encoder") / "encoder-accurate" / "manifest.json").exists():
            accurate_model = s3_assets.Asset(self, "AccurateEncoderModel",
                                             path=str(settings.accurate_model_path()))
            available["LABELLOOP_ACCURATE_ENCODER_MODEL"] = accurate_model.s3_object_url
        elif settings.default_encoder == "accurate":
            raise SystemExit("default_encoder is accurate but the encoder layer has no accurate "
                             "encoder: run `.venv/bin/python scripts/build_encoder.py --encoder "
                             "all` and scripts/build_layers.py first")
        sizing = {"api": (settings.api_memory_mb, settings.api_timeout_seconds),
                  "training": (settings.training_memory_mb, None),
                  "batch-invoke": (settings.batch_memory_mb, None)}
        self.workers: dict[str, Worker] = {}
        for spec in RESOURCES.functions:
            memory, timeout = sizing[spec.name]
            if spec.queue:  # a worker may run while its queue hides the message (Lambda: ≤ 900 s)
                timeout = min(900, queues.specs[spec.queue].visibility_timeout)
            worker = Worker(
                self, construct_id(spec.name), settings, name=spec.name, handler=spec.handler,
                memory_mb=memory, timeout=cdk.Duration.seconds(timeout),
                layers=[layers[n] for n in spec.layers],
                environment=environment(spec.settings, available, f"the {spec.name} function"))
            if spec.queue:
                worker.alias.add_event_source(sources.SqsEventSource(
                    queues.queues[spec.queue], batch_size=queues.specs[spec.queue].batch_size,
                    report_batch_item_failures=True))
            self.workers[spec.name] = worker
        self.api, self.training, self.batch = (self.workers[n]
                                               for n in ("api", "training", "batch-invoke"))

        if accurate_model is not None:  # read that one object (grant_read would allow s3:List*)
            for worker in (self.api, self.batch):
                worker.allow(["s3:GetObject"], [
                    accurate_model.bucket.arn_for_objects(accurate_model.s3_object_key)])

        main, invokes, idem = (data.tables[n] for n in ("main", "invokes", "idempotency"))
        bucket = data.bucket
        # Model versions and pictures under functions/<fid>/, batch results under
        # batches/<fid>/, what users put for an image batch under inputs/<fid>/.
        fn_objects = bucket.arn_for_objects("functions/*")
        batch_objects = bucket.arn_for_objects(f"{BATCH_PREFIX}*")
        input_objects = bucket.arn_for_objects(f"{INPUT_PREFIX}*")
        pictures = bucket.arn_for_objects(image_key("*", "*"))

        self.api.allow(READ + WRITE, table_arns(main))
        self.api.allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                        "dynamodb:BatchWriteItem"], table_arns(invokes))
        self.api.allow(["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                       [fn_objects, batch_objects])
        self.api.allow(["s3:DeleteObject", "s3:DeleteObjectVersion"], [input_objects])
        # An image function's pictures (samples and invokes): the only objects the API puts.
        self.api.allow(["s3:PutObject"], [pictures])
        self.api.allow(["s3:ListBucket", "s3:ListBucketVersions"], [bucket.bucket_arn])
        self.api.allow(["sqs:SendMessage"], [queues.queues["training"].queue_arn,
                                             queues.queues["batch-invoke"].queue_arn])
        self.api.allow(["secretsmanager:GetSecretValue"], [data.signing_secret.secret_arn])

        self.training.allow(READ + WRITE, table_arns(main))
        self.training.allow(["s3:GetObject", "s3:PutObject"], [fn_objects])
        self.training.allow(["sqs:SendMessage"], [queues.queues["training"].queue_arn])

        self.batch.allow(READ + WRITE, table_arns(main))
        self.batch.allow(["dynamodb:PutItem", "dynamodb:BatchWriteItem"], table_arns(invokes))
        self.batch.allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                          "dynamodb:DeleteItem"], [idem.table_arn])
        self.batch.allow(["s3:GetObject"], [fn_objects, input_objects])
        self.batch.allow(["s3:PutObject"], [batch_objects, pictures])
