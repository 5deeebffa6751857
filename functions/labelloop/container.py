"""The composition root: AWS clients, repositories, encoders and caches, built lazily, once
per container.

A container reads the settings of one entry point (`labelloop.settings`): each handler asks
`deps()` for the container of its settings class, so it fails at once if its environment lacks
what it needs, and reads nothing it does not. Nothing heavy happens at import time. Tests build
their own `Deps` (the API's settings unless told otherwise) and install them with `reset()`, so
no module needs reloading.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING

from labelloop.settings import ApiSettings, Settings

if TYPE_CHECKING:
    from labelloop.data import ports

log = logging.getLogger(__name__)


class Deps:
    def __init__(self, settings: Settings | None = None,
                 settings_cls: type[Settings] = ApiSettings):
        self._settings = settings
        # The entry point this container serves: given settings say it themselves.
        self.settings_cls = type(settings) if settings is not None else settings_cls

    @cached_property
    def settings(self) -> Settings:
        """The entry point's settings (read from the environment on first use). Use cases read
        the fields of the entry points that call them: a field another entry point's model
        lacks is a programming error, not a missing variable."""
        return self._settings or self.settings_cls.from_env()

    @cached_property
    def session(self):
        import boto3

        return boto3.session.Session()

    @cached_property
    def _config(self):
        from botocore.config import Config

        # Invoke threads share these clients (boto3 clients are thread-safe; resources are
        # not, so the tables keep to one resource object per container, and what runs beside
        # other work, as an invoke's record does, writes through the resource's client).
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
        from botocore.config import Config

        # Signature V4 for presigned picture links: V2, which boto3 may still pick for
        # us-east-1, is refused by newer regions.
        return self.session.client("s3", config=self._config.merge(
            Config(signature_version="s3v4")))

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
    def held_invokes(self):
        """The invokes whose work after the response this container holds (labelloop/
        held_invokes.py), done at its shutdown at the latest."""
        from labelloop import afterwork
        from labelloop.held_invokes import HeldInvokes
        from labelloop.usecases import held

        afterwork.at_shutdown(_flush_current)
        return HeldInvokes(self.settings.held_invokes, self.settings.held_invokes_delay_seconds,
                           lambda invokes: held.write(self, invokes))

    @cached_property
    def drift(self) -> ports.DriftLogPort:
        from labelloop.data.drift import DriftLog

        return DriftLog(self.tables)

    @cached_property
    def drift_tracker(self):
        """This container's invoke counts and last drift status (labelloop/drift/tracker.py);
        the counts not yet written are written at its shutdown."""
        from labelloop import afterwork
        from labelloop.drift.tracker import DriftTracker

        afterwork.at_shutdown(_flush_current)
        return DriftTracker()

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

        # Only the API sends batch parts: the workers' settings have no batch queue.
        return Queues(self.session.client("sqs", config=self._config),
                      self.settings.training_queue_url,
                      getattr(self.settings, "batch_queue_url", None))

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

        return ServingCache(self.functions, self.labels, self.objects, self.settings.cache_seconds,
                            self.settings.training_stale_seconds)

    @cached_property
    def feature_cache(self):
        from labelloop.feature_cache import FeatureCache

        return FeatureCache(self.settings.invoke_cache_entries)  # the API's alone

    @cached_property
    def captures(self):
        from labelloop.capture.state import CaptureCache

        return CaptureCache(self.samples, self.ledger, self.objects, self.settings.cache_seconds)


_containers: dict[type[Settings], Deps] = {}
_containers_lock = threading.Lock()


def deps(settings_cls: type[Settings] = ApiSettings) -> Deps:
    """The container of the entry point with these settings (by default the API's), built on
    first use. One per settings class: a Lambda or the Fargate task runs one entry point; the
    local stack's worker process runs two, each with its own container, as on Lambda."""
    d = _containers.get(settings_cls)
    if d is None:
        with _containers_lock:
            d = _containers.setdefault(settings_cls, Deps(settings_cls=settings_cls))
    return d


def _flush_current() -> None:
    """At shutdown (`afterwork.at_shutdown`): what the current containers hold across invokes,
    held invokes first (their work counts for drift), then the drift counts. Only the current
    ones: a container that `reset` dropped may point at AWS endpoints that are gone."""
    from labelloop.usecases import drift

    with _containers_lock:
        current = list(_containers.values())
    for d in current:
        # Built ones only (cached_property keeps them in __dict__); drift checked after the
        # held invokes' work, which may have built it.
        for name, flush in (("held_invokes", lambda d: d.held_invokes.flush()),
                            ("drift_tracker", drift.flush_pending)):
            if name in d.__dict__:
                try:
                    flush(d)
                except Exception:  # the next one still runs
                    log.exception("writing the container's %s at shutdown failed", name)


def reset(*new: Deps) -> None:
    """Drop every container; each of `new` becomes the one for its settings class (tests, the
    local stack after moving endpoints)."""
    with _containers_lock:
        _containers.clear()
        for d in new:
            _containers[d.settings_cls] = d
