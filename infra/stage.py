"""Stage settings: everything that differs between deployments, validated once at synth.

Read from the CDK context: `-c stage=<name>` picks the stage (default `dev`; the stack is
`Labelloop-<name>` and physical names are `labelloop-<name>-…`), and `-c settings='<json>'`
overrides any field below, e.g.

    scripts/cdk.sh deploy -c stage=prod -c settings='{"api_memory_mb": 3008}'

A `"labelloop:<stage>"` object in cdk.json's context does the same per stage, checked in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from labelloop.encoder import DEFAULT_ENCODER, ENCODERS, file_sha256

ROOT = Path(__file__).resolve().parents[1]
# Days -> the name of aws_logs.RetentionDays (the CloudWatch periods people pick).
RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
             30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS",
             365: "ONE_YEAR", 731: "TWO_YEARS", 1827: "FIVE_YEARS", 3653: "TEN_YEARS"}


class StageSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field("dev", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    # Lambda's Python and wheel platform: the layers under layers_dir must be built for them
    # (`scripts/build_layers.py --python …`). An emulator that runs handlers with its own
    # interpreter needs layers for that interpreter instead.
    lambda_python: str = Field("3.12", pattern=r"^3\.1[1-3]$")
    platform: str = "manylinux_2_28_x86_64"
    layers_dir: Path = ROOT / "layers"
    # 1769 MB is one full vCPU: the encoder's latency scales with it.
    api_memory_mb: int = Field(1769, ge=512, le=10240)
    api_timeout_seconds: int = Field(29, ge=3, le=29)  # API Gateway's integration limit
    training_memory_mb: int = Field(3008, ge=1024, le=10240)
    batch_memory_mb: int = Field(3008, ge=1024, le=10240)
    # API throttling (per stage, all clients together).
    throttle_rate: float = Field(100, gt=0)
    throttle_burst: int = Field(200, gt=0)
    # The API's 5xx share (of all requests, per 5 minutes) that raises the error-rate alarm;
    # None: no such alarm (ministack, the emulator, has no metric-math alarms).
    error_rate_alarm_percent: float | None = Field(5.0, gt=0, le=100)
    log_retention_days: int = Field(30)
    train_debounce_seconds: int = Field(3, ge=0, le=900)
    invoke_retention_days: int = Field(30, ge=1, le=365)
    # Invokes whose work after the response an API container holds to do at once (1: each
    # invoke does its own; README "Held invokes" says what holding trades).
    held_invokes: int = Field(1, ge=1, le=25)
    # The encoder of functions created without one: `accurate` is a few points more accurate
    # with few samples per label and costs about 9x the encoder time (README "Encoder").
    default_encoder: str = Field(DEFAULT_ENCODER, pattern=f"^({'|'.join(ENCODERS)})$")
    # The Fargate training path: functions with at least this many annotated samples train in
    # a container task instead of the training Lambda (memory and time limits).
    fargate_training: bool = True
    fargate_min_samples: int = Field(20_000, ge=1)
    fargate_cpu: int = Field(2048)
    fargate_memory_mb: int = Field(8192)
    # Tables, the bucket and the signing key survive `cdk destroy` unless this is false.
    retain_data: bool = True
    # X-Ray traces of the Lambda handlers (labelloop.observability): off by default, since the
    # X-Ray SDK's import adds about 200 ms to every cold start.
    tracing: bool = False
    alarm_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in RETENTION:
            raise ValueError(f"must be one of {sorted(RETENTION)}")
        return v

    @field_validator("platform")
    @classmethod
    def _platform(cls, v: str) -> str:
        if not re.fullmatch(r"manylinux_2_\d+_(x86_64|aarch64)", v):
            raise ValueError("a manylinux wheel tag such as manylinux_2_28_x86_64")
        return v

    @property
    def arm64(self) -> bool:
        return self.platform.endswith("aarch64")

    def layer_dir(self, name: str) -> Path:
        """A built layer folder; synth fails with the command that builds it if missing."""
        folder = (self.layers_dir / "encoder-layer" if name == "encoder" else
                  self.layers_dir / f"{name}-py{self.lambda_python}-{self.platform}")
        if not folder.is_dir():
            raise SystemExit(
                f"layer folder {folder} is missing: run `.venv/bin/python scripts/build_encoder.py"
                f" && .venv/bin/python scripts/build_layers.py --python {self.lambda_python} "
                f"--platform {self.platform}` first")
        return folder

    def accurate_model_path(self) -> Path:
        """The accurate encoder's model.onnx, which must match the manifest in the layer."""
        path = self.layers_dir / "encoder-accurate" / "model.onnx"
        layer_manifest = self.layer_dir("encoder") / "encoder-accurate" / "manifest.json"
        digest = json.loads(layer_manifest.read_text())["files"]["model.onnx"]
        if not path.exists() or file_sha256(path) != digest:
            raise SystemExit(
                f"{path} is missing or not the model the encoder layer was built with: run "
                "`.venv/bin/python scripts/build_encoder.py --encoder all && .venv/bin/python "
                f"scripts/build_layers.py --python {self.lambda_python} --platform "
                f"{self.platform}` first")
        return path


def from_context(get: Any) -> StageSettings:
    """`get` is `node.try_get_context`. Precedence: defaults < cdk.json's per-stage object <
    `-c settings=…`."""
    stage = get("stage") or "dev"
    values: dict[str, Any] = {"stage": stage}
    values.update(_as_dict(get(f"labelloop:{stage}"), f"labelloop:{stage}"))
    values.update(_as_dict(get("settings"), "settings"))
    return StageSettings.model_validate(values)


def _as_dict(value: Any, key: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):  # `-c key=<json>` arrives as a string
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise SystemExit(f"context {key}: not JSON ({err})") from err
    if not isinstance(value, dict):
        raise SystemExit(f"context {key}: expected a JSON object")
    return value
