"""Each Lambda's environment, validated once per container (pydantic at the boundary).

Resource names come from `labelloop.resources` (the env var of each resource); tuning knobs have
defaults that work without configuration. `AWS_ENDPOINT_URL`, read by boto3 itself, points
every client at an emulator locally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from labelloop.encoder import DEFAULT_ENCODER, ENCODERS


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    table: str = Field(alias="LABELLOOP_TABLE")
    invokes_table: str = Field(alias="LABELLOOP_INVOKES_TABLE")
    bucket: str = Field(alias="LABELLOOP_BUCKET")
    training_queue_url: str = Field(alias="LABELLOOP_TRAINING_QUEUE_URL")
    batch_queue_url: str = Field("", alias="LABELLOOP_BATCH_QUEUE_URL")
    # Where the token signing key is: a Secrets Manager secret (deployments), or a file only
    # its owner can read (the local stack: its AWS endpoint is open to any local process).
    signing_secret: str = Field("", alias="LABELLOOP_SIGNING_SECRET")
    signing_key_file: str = Field("", alias="LABELLOOP_SIGNING_KEY_FILE")
    # Only the batch-invoke worker uses it (Powertools idempotency per message).
    idempotency_table: str = Field("", alias="LABELLOOP_IDEMPOTENCY_TABLE")
    # Changes to samples/labels within this window coalesce into one training run.
    train_debounce_seconds: int = Field(3, ge=0, le=900, alias="LABELLOOP_TRAIN_DEBOUNCE_SECONDS")
    # How long a warm container trusts its cached function, labels and live pointer.
    cache_seconds: float = Field(2.0, ge=0, le=300, alias="LABELLOOP_CACHE_SECONDS")
    token_ttl_seconds: int = Field(3600, ge=60, le=86400, alias="LABELLOOP_TOKEN_TTL_SECONDS")
    # Failed POST /connect/token attempts per client id and window before 429s.
    token_failure_limit: int = Field(10, ge=1, alias="LABELLOOP_TOKEN_FAILURE_LIMIT")
    token_failure_window_seconds: int = Field(300, ge=1,
                                              alias="LABELLOOP_TOKEN_FAILURE_WINDOW_SECONDS")
    max_body_bytes: int = Field(256 * 1024, ge=1024, alias="LABELLOOP_MAX_BODY_BYTES")
    default_invoke_retention_days: int = Field(
        30, ge=1, le=365, alias="LABELLOOP_INVOKE_RETENTION_DAYS")
    # The encoder of a function created without one (`fast` or `accurate`).
    default_encoder: str = Field(DEFAULT_ENCODER, pattern=f"^({'|'.join(ENCODERS)})$",
                                 alias="LABELLOOP_DEFAULT_ENCODER")
    # s3://bucket/key of the accurate encoder's model.onnx where the layers hold only its
    # manifest and tokenizer (on Lambda: 110 MB do not fit beside the runtime). Empty: the
    # model is beside the manifest (local stack, tests).
    accurate_encoder_model: str = Field("", alias="LABELLOOP_ACCURATE_ENCODER_MODEL")
    # A training run silent for longer than this is taken as dead (its Lambda timed out).
    training_stale_seconds: int = Field(960, ge=60, alias="LABELLOOP_TRAINING_STALE_SECONDS")

    # The Fargate training path, set by the stack where the stage enables it: functions with at
    # least fargate_min_samples annotated samples train in this ECS task instead of the Lambda.
    training_cluster: str = Field("", alias="LABELLOOP_TRAINING_CLUSTER")
    training_task_definition: str = Field("", alias="LABELLOOP_TRAINING_TASK_DEFINITION")
    training_container: str = Field("training", alias="LABELLOOP_TRAINING_CONTAINER")
    training_subnets: str = Field("", alias="LABELLOOP_TRAINING_SUBNETS")  # comma-separated
    training_security_group: str = Field("", alias="LABELLOOP_TRAINING_SECURITY_GROUP")
    fargate_min_samples: int = Field(20_000, ge=1, alias="LABELLOOP_FARGATE_MIN_SAMPLES")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls.model_validate({k: v for k, v in env.items() if k.startswith("LABELLOOP_")})
