"""Request bodies. Extra keys are ignored, not rejected: the Nyckel SDK sends some (description,
metadata, externalId: null, sampleSets)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionIn(Body):
    name: str | None = Field(None, max_length=200)
    input: str = "Text"
    output: str = "Classification"
    storeInvokes: bool | None = None
    invokeRetentionDays: int | None = Field(None, ge=1, le=365)
    # Ours: `fast` (all-MiniLM-L6-v2, the default) or `accurate` (all-mpnet-base-v2: a few
    # points more accurate few-shot, ~9x the encoder time). Fixed once created.
    encoder: str | None = None


class FunctionPatch(Body):
    name: str | None = Field(None, max_length=200)
    storeInvokes: bool | None = None
    invokeRetentionDays: int | None = Field(None, ge=1, le=365)
    encoder: str | None = None  # may repeat the function's own; another one is a 400


class LabelIn(Body):
    name: str
    description: str | None = None
    # No empty key: moto (the local stack's DynamoDB) stores `{"": …}` inside a map in a form
    # its own reads then fail on, and every later read of the function's labels was a 500.
    metadata: dict[Annotated[str, Field(min_length=1)], str] | None = None


class AnnotationIn(Body):
    labelId: str | None = None
    labelName: str | None = None


class SampleIn(Body):
    data: str
    externalId: str | None = None
    annotation: AnnotationIn | None = None


# Samples per bulk import (`POST …/samples/batch`); the body limit applies too.
MAX_IMPORT = 1000


class SamplesIn(Body):
    samples: list[SampleIn] = Field(min_length=1, max_length=MAX_IMPORT)


class InvokeIn(Body):
    data: str


class TrainIn(Body):
    force: bool = False
