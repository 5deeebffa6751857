"""The composition root: clients, store, encoders and caches, built lazily once per container.

Nothing heavy happens at import time. Tests build their own `Deps` from settings (or reset the
default one with `reset()`), so no module needs reloading.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property

from labelloop.settings import Settings

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
    def store(self):
        from botocore.config import Config

        from labelloop.store import Store

        # Invoke threads share these clients (boto3 clients are thread-safe; resources are
        # not, so the store keeps to one resource object per container, used under the GIL).
        # No client-side parameter validation: AWS validates every request anyway, and in a
        # profile of the batch worker's writer thread it was about a fifth of its time.
        cfg = Config(max_pool_connections=32, retries={"mode": "standard"},
                     parameter_validation=False)
        s = self.settings
        return Store(self.session.resource("dynamodb", config=cfg),
                     self.session.client("s3", config=cfg), self.session.client("sqs", config=cfg),
                     s.table, s.invokes_table, s.bucket, s.training_queue_url,
                     ecs=self.session.client("ecs") if s.training_task_definition else None)

    @cached_property
    def signing_key(self) -> bytes:
        if self.settings.signing_key_file:
            from pathlib import Path

            return Path(self.settings.signing_key_file).read_bytes().strip()
        sm = self.session.client("secretsmanager")
        return sm.get_secret_value(SecretId=self.settings.signing_secret)["SecretString"].encode()

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
        self.store.download_object(uri, dest)
        # A cold-start cost worth seeing in the logs (110 MB, once per container).
        log.info("fetched the %s encoder's model from %s in %.1f s", encoder, uri,
                 time.perf_counter() - started)

    @cached_property
    def serving(self):
        from labelloop.serving import ServingCache

        return ServingCache(self.store, self.settings.cache_seconds)

    @cached_property
    def captures(self):
        from labelloop.capture.state import CaptureCache

        return CaptureCache(self.store, self.settings.cache_seconds)


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
