"""The one description of labelloop's AWS resources: tables, bucket, queues, secret.

The local stack creates exactly these in moto (`create_all`); the CDK stack declares them from
the same objects, and a test compares the synthesized template with this description. Physical
names derive from the stage (`labelloop-<stage>-<name>`); the Lambdas learn them from the
environment, each what its settings model declares (`labelloop.settings`).

Table layout and access patterns: docs/storage.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from labelloop.settings import ApiSettings, BatchSettings, Settings, TrainingSettings


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True)


class IndexSpec(_Spec):
    name: str
    hash_key: str
    range_key: str


class TableSpec(_Spec):
    name: str
    hash_key: str = "pk"
    range_key: str | None = "sk"
    indexes: tuple[IndexSpec, ...] = ()
    # Epoch seconds. DynamoDB deletes expired items lazily (moto never does): readers filter.
    ttl_attribute: str | None = None
    # The environment variable that carries the physical name to the Lambdas.
    env: str


class QueueSpec(_Spec):
    name: str
    env: str
    visibility_timeout: int  # seconds; at least the consumer's timeout
    max_receive_count: int = 3  # then the message moves to the DLQ
    batch_size: int = 1
    dlq_retention_days: int = 14


class BucketSpec(_Spec):
    name: str
    env: str
    versioned: bool = True


class SecretSpec(_Spec):
    name: str
    env: str
    purpose: Literal["token-signing-key"]


class FunctionSpec(_Spec):
    name: str
    handler: str
    # Lambda layers (scripts/build_layers.py builds them), besides the code (functions/).
    layers: tuple[str, ...]
    queue: str | None = None  # the queue whose event source mapping invokes it
    # Its environment: the stack sets exactly the variables this model declares.
    settings: type[Settings]


class Resources(_Spec):
    tables: tuple[TableSpec, ...]
    queues: tuple[QueueSpec, ...]
    buckets: tuple[BucketSpec, ...]
    secrets: tuple[SecretSpec, ...]
    functions: tuple[FunctionSpec, ...]

    def physical(self, stage: str, name: str) -> str:
        return f"labelloop-{stage}-{name}"


RESOURCES = Resources(
    tables=(
        # Clients, functions, labels, samples, model versions: docs/storage.md. Only the
        # failed-token counters carry the TTL attribute.
        TableSpec(name="main", env="LABELLOOP_TABLE", ttl_attribute="expires_at",
                  indexes=(IndexSpec(name="gsi1", hash_key="gsi1pk", range_key="gsi1sk"),
                           # The capture buffer by strategy, in priority order.
                           IndexSpec(name="gsi2", hash_key="gsi2pk", range_key="gsi2sk"))),
        # One record per invoke, kept for the function's invoke retention.
        TableSpec(name="invokes", env="LABELLOOP_INVOKES_TABLE", ttl_attribute="expires_at"),
        # Powertools idempotency records (batch-invoke messages): its default key and expiry.
        TableSpec(name="idempotency", hash_key="id", range_key=None, ttl_attribute="expiration",
                  env="LABELLOOP_IDEMPOTENCY_TABLE"),
    ),
    queues=(
        # Visibility covers the training Lambda's 15-minute ceiling.
        QueueSpec(name="training", env="LABELLOOP_TRAINING_QUEUE_URL", visibility_timeout=960),
        QueueSpec(name="batch-invoke", env="LABELLOOP_BATCH_QUEUE_URL", visibility_timeout=960),
    ),
    buckets=(BucketSpec(name="models", env="LABELLOOP_BUCKET"),),
    secrets=(SecretSpec(name="signing-key", env="LABELLOOP_SIGNING_SECRET",
                        purpose="token-signing-key"),),
    functions=(
        FunctionSpec(name="api", handler="labelloop.handlers.api.handler",
                     layers=("runtime", "encoder"), settings=ApiSettings),
        # Training reads stored features: no encoder, and a layer with scikit-learn instead.
        FunctionSpec(name="training", handler="labelloop.handlers.training.handler",
                     layers=("training",), queue="training", settings=TrainingSettings),
        FunctionSpec(name="batch-invoke", handler="labelloop.handlers.batch.handler",
                     layers=("runtime", "encoder"), queue="batch-invoke",
                     settings=BatchSettings),
    ),
)


def dlq_name(queue: QueueSpec) -> str:
    return f"{queue.name}-dlq"


def bucket_physical(stage: str, account: str, bucket: BucketSpec) -> str:
    """S3 names are global: the account id keeps two deployments apart."""
    return f"labelloop-{stage}-{bucket.name}-{account}"


def stack_outputs(session, stack_name: str) -> dict[str, str]:
    """A deployed stack's outputs (infra/stack.py names them); LookupError if no such stack."""
    cfn = session.client("cloudformation")
    try:
        (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as err:
        raise LookupError(f"stack {stack_name}: {err.response['Error']['Message']}") from err
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _index_spec(i: IndexSpec) -> dict:
    return {"IndexName": i.name, "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": i.hash_key, "KeyType": "HASH"},
                          {"AttributeName": i.range_key, "KeyType": "RANGE"}]}


def _add_missing_indexes(ddb, name: str, t: TableSpec) -> None:
    """A local state saved by an older version lacks indexes added since: add them."""
    have = {i["IndexName"] for i in ddb.describe_table(TableName=name)["Table"].get(
        "GlobalSecondaryIndexes", [])}
    for i in t.indexes:
        if i.name not in have:
            ddb.update_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                      for a in (i.hash_key, i.range_key)],
                GlobalSecondaryIndexUpdates=[{"Create": _index_spec(i)}])


def create_all(session, stage: str, account: str = "000000000000",
               with_secrets: bool = True) -> dict[str, str]:
    """Create every resource (idempotently) with a boto3 session pointed at an emulator.

    Returns the environment the Lambdas need: `{env var: physical name or URL}`. Without
    `with_secrets`, secrets are named but not created (the local stack keeps them in files).
    """
    import json
    import secrets

    env: dict[str, str] = {}
    ddb = session.client("dynamodb")
    existing = set(ddb.list_tables()["TableNames"])
    for t in RESOURCES.tables:
        name = RESOURCES.physical(stage, t.name)
        env[t.env] = name
        if name in existing:
            _add_missing_indexes(ddb, name, t)
            continue
        attrs = {t.hash_key, t.range_key} | {k for i in t.indexes for k in (i.hash_key,
                                                                             i.range_key)}
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": k, "KeyType": kind}
                       for k, kind in ((t.hash_key, "HASH"), (t.range_key, "RANGE")) if k],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                  for a in sorted(attrs - {None})],
            **({"GlobalSecondaryIndexes": [_index_spec(i) for i in t.indexes]}
               if t.indexes else {}))
        if t.ttl_attribute:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": t.ttl_attribute})
    sqs = session.client("sqs")
    for q in RESOURCES.queues:
        dlq_url = sqs.create_queue(QueueName=RESOURCES.physical(stage, dlq_name(q)), Attributes={
            "MessageRetentionPeriod": str(q.dlq_retention_days * 86400)})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=RESOURCES.physical(stage, q.name), Attributes={
            "VisibilityTimeout": str(q.visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": q.max_receive_count})})["QueueUrl"]
        env[q.env] = url
    s3 = session.client("s3")
    for b in RESOURCES.buckets:
        name = bucket_physical(stage, account, b)
        env[b.env] = name
        if name not in {x["Name"] for x in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=name)
            if b.versioned:
                s3.put_bucket_versioning(Bucket=name,
                                         VersioningConfiguration={"Status": "Enabled"})
    sm = session.client("secretsmanager")
    for s in RESOURCES.secrets:
        name = RESOURCES.physical(stage, s.name)
        env[s.env] = name
        if not with_secrets:
            continue
        try:
            sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))
    return env
