"""Settings per entry point: what each requires, and the container each handler gets. (The CDK
stack's environments against these models: tests/test_infra.py.)"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labelloop.settings import (
    ApiSettings,
    BatchSettings,
    Settings,
    TrainingSettings,
    TrainingTaskSettings,
)

BASE = {"LABELLOOP_TABLE": "t", "LABELLOOP_INVOKES_TABLE": "i", "LABELLOOP_BUCKET": "b"}
QUEUE = {"LABELLOOP_TRAINING_QUEUE_URL": "q"}
API = {**BASE, **QUEUE, "LABELLOOP_BATCH_QUEUE_URL": "bq", "LABELLOOP_SIGNING_SECRET": "s"}


@pytest.mark.parametrize("model, env, required", [
    (Settings, BASE, "LABELLOOP_BUCKET"),
    (ApiSettings, API, "LABELLOOP_BATCH_QUEUE_URL"),
    (TrainingSettings, {**BASE, **QUEUE}, "LABELLOOP_TRAINING_QUEUE_URL"),
    (TrainingTaskSettings, {**BASE, **QUEUE}, "LABELLOOP_TRAINING_QUEUE_URL"),
    (BatchSettings, {**BASE, "LABELLOOP_IDEMPOTENCY_TABLE": "idem"},
     "LABELLOOP_IDEMPOTENCY_TABLE"),
])
def test_each_entry_point_requires_its_resources(model, env, required):
    model.from_env(env)
    with pytest.raises(ValidationError, match=required):
        model.from_env({k: v for k, v in env.items() if k != required})
    with pytest.raises(ValidationError, match=required):  # an empty name is no name
        model.from_env({**env, required: ""})
    # Another entry point's variables are ignored (the local stack shares one environment).
    assert model.from_env({**env, "LABELLOOP_SOMETHING_ELSE": "x"}) == model.from_env(env)


def test_the_api_needs_a_signing_key_location():
    no_key = {k: v for k, v in API.items() if k != "LABELLOOP_SIGNING_SECRET"}
    with pytest.raises(ValidationError, match="LABELLOOP_SIGNING_KEY_FILE"):
        ApiSettings.from_env(no_key)
    assert ApiSettings.from_env({**no_key, "LABELLOOP_SIGNING_KEY_FILE": "/k"}).signing_key_file


def test_the_fargate_path_is_all_or_nothing():
    env = {**BASE, **QUEUE}
    assert not TrainingSettings.from_env(env).fargate
    fargate = {"LABELLOOP_TRAINING_CLUSTER": "c", "LABELLOOP_TRAINING_TASK_DEFINITION": "td",
               "LABELLOOP_TRAINING_SUBNETS": "s1,s2", "LABELLOOP_TRAINING_SECURITY_GROUP": "sg"}
    assert TrainingSettings.from_env({**env, **fargate}).fargate
    with pytest.raises(ValidationError, match="LABELLOOP_TRAINING_SECURITY_GROUP"):
        TrainingSettings.from_env({**env, **fargate, "LABELLOOP_TRAINING_SECURITY_GROUP": ""})


def test_one_container_per_entry_point(monkeypatch):
    from labelloop import container

    for k, v in {**API, "LABELLOOP_IDEMPOTENCY_TABLE": "idem"}.items():
        monkeypatch.setenv(k, v)
    container.reset()
    try:
        api, batch = container.deps(), container.deps(BatchSettings)
        assert type(api.settings) is ApiSettings and type(batch.settings) is BatchSettings
        assert container.deps(ApiSettings) is api and container.deps(BatchSettings) is batch
        # A container installed for its settings class replaces that one; the rest go.
        mine = container.Deps(settings_cls=BatchSettings)
        container.reset(mine)
        assert container.deps(BatchSettings) is mine and container.deps() is not api
        # What the batch worker never reads, its settings do not hold.
        with pytest.raises(AttributeError):
            _ = mine.settings.batch_queue_url
    finally:
        container.reset()
