"""Each entry point's environment, validated once per container (pydantic at the boundary).

One model per entry point: `ApiSettings` (the HTTP API), `TrainingSettings` (the training
Lambda), `BatchSettings` (the batch-invoke worker), `TrainingTaskSettings` (the Fargate training
task), over the `Settings` every one of them reads. What an entry point's code paths use is
required there, so a missing resource fails its first request instead of the first use of that
resource; what it does not use is not declared. The CDK stack builds each function's
environment from its model (`infra/environment.py`: exactly the variables it declares) and
`tests/test_infra.py` checks the synthesized template against them; `resources.py` names each
Lambda's model.

Resource names come from `labelloop.resources` (the env var of each resource); tuning knobs have
defaults that work without configuration. `AWS_ENDPOINT_URL`, read by boto3 itself, points
every client at an emulator locally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labelloop.encoder import DEFAULT_ENCODER, ENCODERS

# A table name, bucket or queue URL: an empty one would only fail at its first call.
Resource = Annotated[str, Field(min_length=1)]


class Settings(BaseModel):
    """What every entry point reads: where the data is, and how long caches are trusted."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    table: Resource = Field(alias="LABELLOOP_TABLE")
    # Every container's tables object names both (`data.codec.Tables`).
    invokes_table: Resource = Field(alias="LABELLOOP_INVOKES_TABLE")
    bucket: Resource = Field(alias="LABELLOOP_BUCKET")
    # How long a warm container trusts its cached function, labels and live pointer.
    cache_seconds: float = Field(2.0, ge=0, le=300, alias="LABELLOOP_CACHE_SECONDS")
    # A training run silent for longer than this is taken as dead (its Lambda timed out).
    # Serving reads it too: while a run is under way, invokes follow the live pointer.
    training_stale_seconds: int = Field(960, ge=60, alias="LABELLOOP_TRAINING_STALE_SECONDS")
    # X-Ray tracing of the Lambda handlers (stage setting `tracing`; labelloop.observability).
    tracing: bool = Field(False, alias="LABELLOOP_TRACING")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Variables this model does not declare are ignored: the local stack and the tests give
        every entry point one environment (the CDK stack gives each exactly its own)."""
        env = os.environ if environ is None else environ
        return cls.model_validate({k: v for k, v in env.items() if k.startswith("LABELLOOP_")})


class _Trains(Settings):
    """Entry points that queue training (the API after changes; a run that finds its function
    busy queues itself again)."""

    training_queue_url: Resource = Field(alias="LABELLOOP_TRAINING_QUEUE_URL")
    # A retrain starts from the live version instead of searching (usecases/search_plan.py)
    # once the function has this many annotated samples, until they have changed by more
    # than `search_growth` of those the last search had.
    warm_min_samples: int = Field(1000, ge=0, alias="LABELLOOP_WARM_MIN_SAMPLES")
    search_growth: float = Field(0.2, ge=0, alias="LABELLOOP_SEARCH_GROWTH")
    # Suspects reviewed (fixed or kept) before their share fixed lightens the unreviewed rest
    # in training (`labelloop.ml.suspect_weights`).
    suspects_min_reviewed: int = Field(20, ge=1, alias="LABELLOOP_SUSPECTS_MIN_REVIEWED")


class _Encodes(Settings):
    """Entry points that run the encoder."""

    # s3://bucket/key of the accurate encoder's model.onnx where the layers hold only its
    # manifest and tokenizer (on Lambda: 110 MB do not fit beside the runtime). Empty: the
    # model is beside the manifest (local stack, tests).
    accurate_encoder_model: str = Field("", alias="LABELLOOP_ACCURATE_ENCODER_MODEL")
    # An image given as a URL may be fetched from this host (http:// or https://, loopback
    # addresses only; nothing else private). For the local stack, to try images served on this
    # machine (`labelloop local --allow-loopback-image-urls`); a deployment never sets it.
    image_urls_allow_loopback: bool = Field(False, alias="LABELLOOP_IMAGE_URLS_ALLOW_LOOPBACK")


class ApiSettings(_Trains, _Encodes):
    """The HTTP API (`handlers/api.py`): every route, tokens, batch submission."""

    batch_queue_url: Resource = Field(alias="LABELLOOP_BATCH_QUEUE_URL")
    # Where the token signing key is (one of the two): a Secrets Manager secret (deployments),
    # or a file only its owner can read (the local stack: its AWS endpoint is open to any local
    # process). The file wins if both are set.
    signing_secret: str = Field("", alias="LABELLOOP_SIGNING_SECRET")
    signing_key_file: str = Field("", alias="LABELLOOP_SIGNING_KEY_FILE")
    # Changes to samples/labels within this window coalesce into one training run.
    train_debounce_seconds: int = Field(3, ge=0, le=900, alias="LABELLOOP_TRAIN_DEBOUNCE_SECONDS")
    token_ttl_seconds: int = Field(3600, ge=60, le=86400, alias="LABELLOOP_TOKEN_TTL_SECONDS")
    # Failed POST /connect/token attempts per client id and window before 429s.
    token_failure_limit: int = Field(10, ge=1, alias="LABELLOOP_TOKEN_FAILURE_LIMIT")
    token_failure_window_seconds: int = Field(300, ge=1,
                                              alias="LABELLOOP_TOKEN_FAILURE_WINDOW_SECONDS")
    max_body_bytes: int = Field(256 * 1024, ge=1024, alias="LABELLOOP_MAX_BODY_BYTES")
    # The routes that take an image (POST …/samples, …/invoke): a photo as the SDK sends it
    # (JPEG up to 1024 px, base64) is often over 256 KiB. Lambda takes 6 MB.
    max_image_body_bytes: int = Field(5 * 1024 * 1024, ge=1024,
                                      alias="LABELLOOP_MAX_IMAGE_BODY_BYTES")
    default_invoke_retention_days: int = Field(
        30, ge=1, le=365, alias="LABELLOOP_INVOKE_RETENTION_DAYS")
    # How a sample's or invoke's picture is linked in `data`: `api`, this API's own route
    # (fetched with the token; the local stack), or `presigned`, an S3 URL any client can
    # fetch for `image_link_seconds` (deployments: the bytes never pass through Lambda).
    image_links: Literal["api", "presigned"] = Field("api", alias="LABELLOOP_IMAGE_LINKS")
    image_link_seconds: int = Field(3600, ge=60, le=7 * 86400,
                                    alias="LABELLOOP_IMAGE_LINK_SECONDS")
    # Inputs whose features a container keeps for invokes of the same input (labelloop/
    # feature_cache.py; 0 turns it off): 4,096 texts on the fast encoder are about 7 MB,
    # pictures 21 MB.
    invoke_cache_entries: int = Field(4096, ge=0, le=1_000_000,
                                      alias="LABELLOOP_INVOKE_CACHE_ENTRIES")
    # Invokes whose work after the response (record, capture, drift count) a container
    # holds to do at once (labelloop/held_invokes.py; 1: each invoke does its own), at the
    # latest by the first invoke this many seconds after the oldest was held (feedback on a
    # sampleId waits 3 s for its record).
    held_invokes: int = Field(1, ge=1, le=25, alias="LABELLOOP_HELD_INVOKES")
    held_invokes_delay_seconds: float = Field(
        1.0, gt=0, le=2.5, alias="LABELLOOP_HELD_INVOKES_DELAY_SECONDS")
    # The encoder of a function created without one (`fast` or `accurate`).
    default_encoder: str = Field(DEFAULT_ENCODER, pattern=f"^({'|'.join(ENCODERS)})$",
                                 alias="LABELLOOP_DEFAULT_ENCODER")
    # Drift (labelloop/drift): a container writes its invokes' counts every this many invokes
    # or seconds; the reference is a live version's first `drift_reference_invokes` invokes,
    # the recent window its last `drift_window_invokes`; a score at or over `drift_threshold`
    # (PSI, sampling noise taken off) flags drift; an input is novel when no training sample
    # is within cosine `drift_novel_cosine` (BANKING77 test texts to 2,048 of its training
    # texts: 0.2 % under 0.5; CLINC150's: 78 %).
    drift_flush_invokes: int = Field(100, ge=1, le=100_000, alias="LABELLOOP_DRIFT_FLUSH_INVOKES")
    drift_flush_seconds: float = Field(60.0, gt=0, le=3600,
                                       alias="LABELLOOP_DRIFT_FLUSH_SECONDS")
    drift_reference_invokes: int = Field(1000, ge=10, alias="LABELLOOP_DRIFT_REFERENCE_INVOKES")
    drift_window_invokes: int = Field(500, ge=10, alias="LABELLOOP_DRIFT_WINDOW_INVOKES")
    drift_threshold: float = Field(0.25, gt=0, alias="LABELLOOP_DRIFT_THRESHOLD")
    drift_novel_cosine: float = Field(0.5, gt=0, le=1, alias="LABELLOOP_DRIFT_NOVEL_COSINE")

    @model_validator(mode="after")
    def _signing_key(self) -> ApiSettings:
        if not (self.signing_secret or self.signing_key_file):
            raise ValueError("LABELLOOP_SIGNING_SECRET or LABELLOOP_SIGNING_KEY_FILE is required "
                             "(where the token signing key is)")
        return self


class TrainingSettings(_Trains):
    """The training Lambda (`handlers/training.py`): runs, or hands large functions to the
    Fargate training task."""

    # The Fargate training path, set by the stack where the stage enables it (all four, or
    # none): functions with at least fargate_min_samples annotated samples train in this ECS
    # task instead of the Lambda.
    training_cluster: str = Field("", alias="LABELLOOP_TRAINING_CLUSTER")
    training_task_definition: str = Field("", alias="LABELLOOP_TRAINING_TASK_DEFINITION")
    training_subnets: str = Field("", alias="LABELLOOP_TRAINING_SUBNETS")  # comma-separated
    training_security_group: str = Field("", alias="LABELLOOP_TRAINING_SECURITY_GROUP")
    training_container: str = Field("training", min_length=1,
                                    alias="LABELLOOP_TRAINING_CONTAINER")
    fargate_min_samples: int = Field(20_000, ge=1, alias="LABELLOOP_FARGATE_MIN_SAMPLES")

    @property
    def fargate(self) -> bool:
        return bool(self.training_task_definition)

    @model_validator(mode="after")
    def _fargate_all_or_none(self) -> TrainingSettings:
        given = {"LABELLOOP_TRAINING_CLUSTER": self.training_cluster,
                 "LABELLOOP_TRAINING_TASK_DEFINITION": self.training_task_definition,
                 "LABELLOOP_TRAINING_SUBNETS": self.training_subnets,
                 "LABELLOOP_TRAINING_SECURITY_GROUP": self.training_security_group}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(k for k, v in given.items() if not v)
            raise ValueError(f"the Fargate training path needs {missing} too")
        return self


class BatchSettings(_Encodes):
    """The batch-invoke worker (`handlers/batch.py`)."""

    # Powertools idempotency records, one per SQS message.
    idempotency_table: Resource = Field(alias="LABELLOOP_IDEMPOTENCY_TABLE")


class TrainingTaskSettings(_Trains):
    """The Fargate training task (`handlers/training_task.py`): the training Lambda's run,
    never its hand-over."""
