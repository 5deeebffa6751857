"""moto in server mode, serialised and persisted: the local DynamoDB, S3, SQS and Secrets Manager.

moto's backends are not thread-safe, so every request runs under one lock: conditional writes are
then atomic, as on DynamoDB. moto keeps no state across restarts, so the backends are pickled to
`<data_dir>/moto.pickle` shortly after any change, and once more on stop.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import json
import logging
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

SERVICES = ("dynamodb", "s3", "sqs", "secretsmanager", "sts")
SNAPSHOT_FILE = "moto.pickle"
SNAPSHOT_INTERVAL = 0.2  # seconds between background snapshots, at most one per interval
# While a long poll waits for messages, it rechecks at least this often: messages also become
# visible when a visibility timeout or delay runs out, which no request announces.
_RECEIVE_RECHECK = 0.1

# X-Amz-Target values that never change state: no snapshot after them.
_READ_TARGETS = frozenset(
    [f"DynamoDB_20120810.{a}" for a in (
        "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable",
        "ListTables", "DescribeTimeToLive")]
    + [f"AmazonSQS.{a}" for a in ("GetQueueAttributes", "GetQueueUrl", "ListQueues")]
    + [f"secretsmanager.{a}" for a in ("GetSecretValue", "DescribeSecret", "ListSecrets")]
)
_RECEIVE = "AmazonSQS.ReceiveMessage"
_UNAVAILABLE = ("503 Service Unavailable", [("Content-Type", "application/json")],
                b'{"message": "the local AWS is shutting down"}')


def _may_mutate(environ: dict) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target not in _READ_TARGETS
    # Without a target it is S3 (REST) or a query-protocol call, which names an Action.
    method = environ.get("REQUEST_METHOD", "")
    return method not in ("GET", "HEAD") or "Action=" in environ.get("QUERY_STRING", "")


class SerialisedApp:
    """WSGI middleware: one request at a time into moto, and a note of possible changes."""

    def __init__(self, app):
        self._app = app
        self.lock = threading.Condition()  # notified after every change, for waiting long polls
        self.dirty = False
        self.closed = False

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") == _RECEIVE:
            status, headers, body = self._receive(environ)
        else:
            with self.lock:
                status, headers, body = self._call(environ)
                if _may_mutate(environ):
                    self._changed()
        start_response(status, headers)
        return [body]

    def _changed(self) -> None:
        self.dirty = True
        self.lock.notify_all()

    def _call(self, environ) -> tuple[str, list, bytes]:
        """Run moto to completion, response body included: it may be produced lazily."""
        if self.closed:
            return _UNAVAILABLE
        started: list = []
        chunks: list[bytes] = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return chunks.append

        result = self._app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return started[0], started[1], b"".join(chunks)

    def _receive(self, environ) -> tuple[str, list, bytes]:
        """A long poll without holding the lock while it waits (moto would sleep inside it).

        moto gets short polls (WaitTimeSeconds 0); between them the lock is released until a
        change or the recheck interval. A queue's own ReceiveMessageWaitTimeSeconds is not
        applied: callers pass WaitTimeSeconds.
        """
        length = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(length) or b"{}")
        deadline = time.monotonic() + float(params.get("WaitTimeSeconds") or 0)
        body = json.dumps({**params, "WaitTimeSeconds": 0}).encode()
        with self.lock:
            while True:
                status, headers, out = self._call({**environ, "wsgi.input": io.BytesIO(body),
                                                   "CONTENT_LENGTH": str(len(body))})
                received = status.startswith("200") and bool(json.loads(out).get("Messages"))
                remaining = deadline - time.monotonic()
                if received or remaining <= 0 or not status.startswith("200"):
                    break
                self.lock.wait(min(remaining, _RECEIVE_RECHECK))
            # An empty receive can still move messages to a DLQ, but the restored state repeats
            # that move on its next receive: no snapshot needed for it.
            if received:
                self._changed()
        return status, headers, out


def _versioned_keys(lists: dict):
    from moto.s3.utils import _VersionedKeyStore

    store = _VersionedKeyStore()
    for key, versions in lists.items():
        dict.__setitem__(store, key, versions)
    return store


def _register_reducers() -> None:
    from moto.s3.utils import _VersionedKeyStore

    # moto's objects hold locks, which pickle refuses; a restored object gets a new, free one.
    copyreg.pickle(type(threading.RLock()), lambda _: (threading.RLock, ()))
    copyreg.pickle(type(threading.Lock()), lambda _: (threading.Lock, ()))
    # S3's key store lists only each key's latest version in items(), which is what pickle
    # saves by default: every earlier version of a versioned bucket would be lost.
    copyreg.pickle(_VersionedKeyStore, lambda s: (_versioned_keys, (dict(s.lists()),)))


def dump_backends() -> bytes:
    from moto.backends import get_backend

    _register_reducers()
    return pickle.dumps({name: dict(get_backend(name)) for name in SERVICES},
                        protocol=pickle.HIGHEST_PROTOCOL)


def load_backends(data: bytes) -> None:
    from moto.backends import get_backend

    for name, accounts in pickle.loads(data).items():
        backend = get_backend(name)
        backend.clear()
        backend.update(accounts)


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn one, even after a power cut."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # makes the rename itself durable
    finally:
        os.close(dir_fd)


def _dispatcher(base):
    """moto's dispatcher, remembering the backend app per X-Amz-Target service: moto finds it
    anew for every request, listing its package directory each time (~0.7 ms of CPU), and a
    JSON-protocol call's service is fixed by its target prefix."""

    class CachedDispatcher(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._by_target: dict[str, object] = {}

        def get_application(self, environ):
            service = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[0]
            if not service:
                return super().get_application(environ)
            app = self._by_target.get(service)
            if app is None:
                app = self._by_target[service] = super().get_application(environ)
            return app

    return CachedDispatcher


class MotoServer:
    """moto on 127.0.0.1:<port> (0 picks a free port), persisted in `data_dir` if one is given.

    moto's state is global to the process: run one server at a time (a restore replaces it).
    """

    def __init__(self, data_dir: Path | None = None, port: int = 0):
        self.snapshot_path = Path(data_dir) / SNAPSHOT_FILE if data_dir is not None else None
        self._port = port
        self._app: SerialisedApp | None = None
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()  # keeps an older snapshot from landing after a newer
        self._endpoint = ""
        self.last_snapshot_seconds: float | None = None
        self._locked_seconds = 0.0

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def start(self) -> MotoServer:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        if self.snapshot_path is not None:
            self.snapshot_path.parent.mkdir(parents=True, exist_ok=True)
            if self.snapshot_path.exists():
                try:
                    load_backends(self.snapshot_path.read_bytes())
                except Exception as e:  # e.g. written by another moto version
                    raise RuntimeError(f"cannot restore {self.snapshot_path} ({e!r}); move it "
                                       "away to start empty") from e

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass  # a line per AWS call drowns the API's own log

        # As moto's ThreadedMotoServer builds it, with the serialising middleware around it.
        self._app = SerialisedApp(_dispatcher(DomainDispatcherApplication)(create_backend_app))
        self._server = make_server("127.0.0.1", self._port, self._app, threaded=True,
                                   request_handler=QuietHandler)
        self._endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                             name="moto-server", daemon=True)]
        if self.snapshot_path is not None:
            self._threads.append(threading.Thread(target=self._snapshot_loop,
                                                  name="moto-snapshot", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def snapshot(self, *, close: bool = False) -> None:
        """Write the state as of now; with `close`, refuse every request from then on."""
        with self._write_lock:
            started = time.perf_counter()
            with self._app.lock:
                if close:
                    self._app.closed = True
                    self._app.lock.notify_all()
                self._app.dirty = False
                data = dump_backends() if self.snapshot_path is not None else None
            self._locked_seconds = time.perf_counter() - started
            if data is None:
                return
            try:
                write_atomically(self.snapshot_path, data)
            except BaseException:
                self._app.dirty = True
                raise
            self.last_snapshot_seconds = time.perf_counter() - started

    def _snapshot_loop(self) -> None:
        # Pickling blocks every request; with a large state, snapshot less often so that
        # requests keep most of the time (a stop still writes everything).
        while not self._stopping.wait(max(SNAPSHOT_INTERVAL, 5 * self._locked_seconds)):
            if self._app.dirty:
                try:
                    self.snapshot()
                except Exception:
                    log.exception("moto snapshot failed; retrying")

    def stop(self) -> None:
        """Stop intake and write the final snapshot first: that part takes milliseconds."""
        if self._server is None:
            return
        self._stopping.set()
        self.snapshot(close=True)
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._server = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
