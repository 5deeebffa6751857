"""The composition root: AWS clients, repositories, encoders and caches, built lazily, once
per container.

Nothing heavy happens at import time. Tests build their own `Deps` from settings (or reset the
default one with `reset()`), so no module needs reloading.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING

from labelloop.settings import Settings

if TYPE_CHECKING:
    from labelloop.data import ports

log = logging.getLogger(__name__)


class Deps:
    def __init__(self, settings: Settings | None = None):
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        return self._settings or Settings.from_env()

    @cached_property
    def session(self):
        import boto3

        return boto3.session.Session()

    @cached_property
    def _config(self):
        from botocore.config import Config

        # Invoke threads share these clients (boto3 clients are thread-safe; resources are
        # not, so the tables keep to one resource object per container, used under the GIL).
        # No client-side parameter validation: AWS validates every request anyway, and in a
        # profile of the batch worker's writer thread it was about a fifth of its time.
        return Config(max_pool_connections=32, retries={"mode": "standard"},
                      parameter_validation=False)

    @cached_property
    def tables(self):
        from labelloop.data.codec import Tables

        return Tables.of(self.session.resource("dynamodb", config=self._config),
                         self.settings.table, self.settings.invokes_table)

    @cached_property
    def s3(self):
        return self.session.client("s3", config=self._config)

    # -- data access, one repository per aggregate (labelloop/data) ----------------------

    @cached_property
    def clients(self) -> ports.ClientsPort:
        from labelloop.data.clients import Clients

        return Clients(self.tables)

    @cached_property
    def functions(self) -> ports.FunctionsPort:
        from labelloop.data.functions import Functions

        return Functions(self.tables)

    @cached_property
    def labels(self) -> ports.LabelsPort:
        from labelloop.data.labels import Labels

        return Labels(self.tables)

    @cached_property
    def samples(self) -> ports.SamplesPort:
        from labelloop.data.samples import Samples

        return Samples(self.tables)

    @cached_property
    def ledger(self) -> ports.CaptureLedgerPort:
        from labelloop.data.ledger import CaptureLedger

        return CaptureLedger(self.tables)

    @cached_property
    def invokes(self) -> ports.InvokesPort:
        from labelloop.data.invokes import Invokes

        return Invokes(self.tables)

    @cached_property
    def jobs(self) -> ports.BatchJobsPort:
        from labelloop.data.jobs import BatchJobs

        return BatchJobs(self.tables)

    @cached_property
    def model_versions(self) -> ports.ModelVersionsPort:
        from labelloop.data.models import ModelVersions

        return ModelVersions(self.tables)

    @cached_property
    def objects(self) -> ports.ObjectsPort:
        from labelloop.data.objects import Objects

        return Objects(self.s3, self.settings.bucket)

    @cached_property
    def queues(self) -> ports.QueuesPort:
        from labelloop.data.queues import Queues

        return Queues(self.session.client("sqs", config=self._config),
                      self.settings.training_queue_url, self.settings.batch_queue_url)

    @cached_property
    def tasks(self):
        """Only where the Fargate training path is configured."""
        from labelloop.data.tasks import TrainingTasks

        return TrainingTasks(self.session.client("ecs"))

    @cached_property
    def signing_key(self) -> bytes:
        if self.settings.signing_key_file:
            from pathlib import Path

            return Path(self.settings.signing_key_file).read_bytes().strip()
        from labelloop.data.secrets import signing_key

        return signing_key(self.session.client("secretsmanager"), self.settings.signing_secret)

    @cached_property
    def encoders(self):
        """One encoder per name (fast, accurate), each loaded on first use."""
        from labelloop.encoder import Encoders

        return Encoders(fetch_model=self._fetch_encoder_model)

    def _fetch_encoder_model(self, encoder: str, dest) -> None:
        uri = self.settings.accurate_encoder_model if encoder == "accurate" else ""
        if not uri:
            from labelloop.encoder import EncoderNotBuilt

            raise EncoderNotBuilt(f"the {encoder} encoder has no model.onnx in this deployment")
        started = time.perf_counter()
        self.objects.download(uri, dest)
        # A cold-start cost worth seeing in the logs (110 MB, once per container).
        log.info("fetched the %s encoder's model from %s in %.1f s", encoder, uri,
                 time.perf_counter() - started)

    @cached_property
    def serving(self):
        from labelloop.serving import ServingCache

        return ServingCache(self.functions, self.labels, self.objects, self.settings.cache_seconds)

    @cached_property
    def captures(self):
        from labelloop.capture.state import CaptureCache

        return CaptureCache(self.samples, self.ledger, self.objects, self.settings.cache_seconds)


_default: Deps | None = None
_default_lock = threading.Lock()


def deps() -> Deps:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Deps()
    return _default


def reset(new: Deps | None = None) -> None:
    """Replace the container's dependencies (tests, the local stack after moving endpoints)."""
    global _default
    with _default_lock:
        _default = new
