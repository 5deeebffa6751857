"""moto in server mode, serialised and durable: the local DynamoDB, S3, SQS and Secrets Manager.

moto's backends are not thread-safe, so every request runs under one lock: conditional writes are
then atomic, as on DynamoDB. moto keeps no state across restarts, so with a data directory:
- every request that may change state is appended to a write-ahead log (`wal/`) and fsynced
  before its response goes out; a start loads the snapshot (`moto.pickle`) and replays the log
  through moto in order;
- replay reproduces moto's ids and receipt handles: each request runs with moto's random seeded
  by its sequence number and SQS's clock frozen at its logged time, the original and the replay
  alike;
- compaction writes a new snapshot when the log has outgrown the last one (in a forked child,
  so requests are held only for the fork) and drops the log it includes; a stop writes a
  final snapshot.
Rule for time on restart: messages that were in flight become visible at once (whoever received
them is gone); that release is itself a logged record, so later replays agree.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import json
import logging
import os
import pickle
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

from labelloop.local import keepalive, wal

log = logging.getLogger(__name__)

SERVICES = ("dynamodb", "s3", "sqs", "secretsmanager", "sts")
SNAPSHOT_FILE = "moto.pickle"
WAL_DIR = "wal"
_FORMAT = 2  # snapshot with the log position it includes; format 1 was the bare backends
# Compaction: when the log since the last snapshot outgrows that snapshot, and at least this
# many bytes. Pickling the whole state costs the machine in proportion to the state (~0.7 s
# of a core at 20,000 samples, with copy-on-write faults in the serving process meanwhile):
# at most one snapshot byte per logged byte keeps that cost per request constant as tables
# grow, where a snapshot every minute did not, and the replay on the next start stays within
# about one snapshot's load.
COMPACT_BYTES = 32 * 1024 * 1024
_COMPACT_CHECK = 0.5
# While a long poll waits for messages, it rechecks at least this often: messages also become
# visible when a visibility timeout or delay runs out, which no request announces.
_RECEIVE_RECHECK = 0.1
_BODY = "labelloop.body"  # the request body, kept in the environ for the log
# Request fields that decide what moto does; the rest of a WSGI environ is per connection.
_WSGI_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
              "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
              "RAW_URI", "REQUEST_URI", "wsgi.url_scheme")

# X-Amz-Target values that never change state: not logged.
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
_FORBIDDEN = ("403 Forbidden", [("Content-Type", "application/json")],
              b'{"message": "unknown access key for the local AWS"}')


def _may_wake_receives(environ: dict) -> bool:
    """Whether a change may make a message receivable: any but DynamoDB's. Waking every waiting
    long poll after each DynamoDB write cost each of them a full moto ReceiveMessage: in a
    steady run of invokes, a fifth of the local AWS's CPU."""
    return not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_")


def _may_mutate(environ: dict) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target not in _READ_TARGETS
    # Without a target it is S3 (REST) or a query-protocol call, which names an Action.
    method = environ.get("REQUEST_METHOD", "")
    return method not in ("GET", "HEAD") or "Action=" in environ.get("QUERY_STRING", "")


class SerialisedApp:
    """WSGI middleware: one request at a time into moto, each possible change journalled.

    With a `journal`, a request that may have changed moto's state is appended to the
    write-ahead log under the lock (so the log has moto's order), and every response, reads
    included, waits until the log is on disk up to what that request saw: nothing is answered
    that a SIGKILL could take back.
    """

    def __init__(self, app, journal: Journal | None = None, access_key: str | None = None):
        self._app = app
        self.journal = journal
        self._access_key = access_key
        # Notified after every change that may make a message receivable, for waiting long
        # polls (`_may_wake_receives`).
        self.lock = threading.Condition()
        self.closed = False
        self.short_polls = 0  # ReceiveMessage calls made into moto for long polls

    def __call__(self, environ, start_response):
        if self._access_key is not None and _access_key_of(environ) != self._access_key:
            start_response(*_FORBIDDEN[:2])
            return [_FORBIDDEN[2]]
        if environ.get("HTTP_X_AMZ_TARGET") == _RECEIVE:
            status, headers, body, lsn = self._receive(environ)
        else:
            mutating = _may_mutate(environ)
            if mutating and self.journal is not None:
                environ = _buffered(environ)  # read before the lock: a slow client holds no one
            with self.lock:
                self._begin()
                status, headers, body = self._call(environ)
                if mutating and not self.closed:
                    self._record(environ)
                    if _may_wake_receives(environ):
                        self._changed()
                lsn = self.journal.log.written if self.journal is not None else 0
        if self.journal is not None:
            self.journal.log.durable(lsn)
        start_response(status, headers)
        return [body]

    def _begin(self) -> None:
        if self.journal is not None:
            self.journal.begin()
        else:
            _Clock.now = None  # a journalled server before this one in the process froze it

    def _record(self, environ) -> None:
        if self.journal is not None:
            self.journal.record(environ)

    def _changed(self) -> None:
        self.lock.notify_all()

    def _call(self, environ) -> tuple[str, list, bytes]:
        """Run moto to completion, response body included: it may be produced lazily."""
        if self.closed:
            return _UNAVAILABLE
        return call_wsgi(self._app, environ)

    def _receive(self, environ) -> tuple[str, list, bytes, int]:
        """A long poll without holding the lock while it waits (moto would sleep inside it).

        moto gets short polls (WaitTimeSeconds 0); between them the lock is released until a
        change or the recheck interval. A queue's own ReceiveMessageWaitTimeSeconds is not
        applied: callers pass WaitTimeSeconds.
        """
        length = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(length) or b"{}")
        deadline = time.monotonic() + float(params.get("WaitTimeSeconds") or 0)
        body = json.dumps({**params, "WaitTimeSeconds": 0}).encode()
        short = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        with self.lock:
            while True:
                self._begin()
                self.short_polls += 1
                before = _queued_counts() if self.journal is not None else None
                status, headers, out = self._call({**short, "wsgi.input": io.BytesIO(body)})
                received = status.startswith("200") and bool(json.loads(out).get("Messages"))
                # An empty receive may still move messages to a dead-letter queue: a change.
                if received or (before is not None and before != _queued_counts()):
                    self._record({**short, _BODY: body})
                    self._changed()
                remaining = deadline - time.monotonic()
                if received or remaining <= 0 or not status.startswith("200"):
                    break
                self.lock.wait(min(remaining, _RECEIVE_RECHECK))
            lsn = self.journal.log.written if self.journal is not None else 0
        return status, headers, out, lsn


def call_wsgi(app, environ) -> tuple[str, list, bytes]:
    started: list = []
    chunks: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, headers]
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return started[0], started[1], b"".join(chunks)


def _buffered(environ) -> dict:
    """The request with its body read into memory (and de-chunked), so it can be logged."""
    body = keepalive.read_body(environ)
    out = {k: v for k, v in environ.items() if k != "HTTP_TRANSFER_ENCODING"}
    out.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                _BODY: body})
    return out


def _access_key_of(environ) -> str | None:
    """The access key id a SigV4 request names (header or presigned query), unverified."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in auth:
        return auth.split(marker, 1)[1].split("/", 1)[0].strip()
    query = parse_qs(environ.get("QUERY_STRING", ""))
    credential = query.get("X-Amz-Credential", [""])[0]
    return credential.split("/", 1)[0] or None


def _queued_counts() -> tuple:
    """Messages per SQS queue (moto's own lists, visible or not): cheap, a handful of queues."""
    from moto.sqs.models import sqs_backends

    return tuple(len(q._messages) for regions in dict.values(sqs_backends)
                 for backend in dict.values(regions) for q in backend.queues.values())


class _Clock:
    """SQS's notion of now: frozen per request while journalling, so that a replay sees the
    same visibility timeouts and delays as the original did."""

    now: float | None = None

    @classmethod
    def unix_time(cls, dt=None) -> float:
        from moto.core.utils import unix_time

        return cls.now if cls.now is not None and dt is None else unix_time(dt)

    @classmethod
    def unix_time_millis(cls, dt=None) -> float:
        return cls.unix_time(dt) * 1000.0

    @classmethod
    def install(cls) -> None:
        import moto.sqs.models as sqs_models

        sqs_models.unix_time = cls.unix_time
        sqs_models.unix_time_millis = cls.unix_time_millis


def release_inflight() -> None:
    """Every received, unsettled SQS message visible again (delays stay as they are)."""
    from moto.sqs.models import sqs_backends

    for regions in dict.values(sqs_backends):
        for backend in dict.values(regions):
            for queue in backend.queues.values():
                for message in queue._messages:
                    message.visible_at = 0
                queue.pending_messages.clear()


class Journal:
    """The log plus what makes a request replay identically: its sequence number (moto's
    random is seeded with it) and its time (SQS's clock)."""

    def __init__(self, log_: wal.Log, seq: int):
        self.log = log_
        self.seq = seq  # of the next record; never reused, across restarts too
        self._now = 0.0

    def begin(self) -> None:
        from moto.moto_api._internal import mock_random

        self._now = _Clock.now = time.time()
        mock_random.seed(self.seq)

    def record(self, environ) -> None:
        fields = {k: v for k, v in environ.items()
                  if (k.startswith("HTTP_") or k in _WSGI_KEYS) and isinstance(v, str)}
        self.log.append({"seq": self.seq, "time": self._now, "environ": fields,
                         "body": environ[_BODY]})
        self.seq += 1

    def release(self) -> None:
        """Log and apply the restart rule: messages in flight become visible."""
        self.begin()
        release_inflight()
        self.log.append({"seq": self.seq, "time": self._now, "release": True})
        self.seq += 1


def replay(app, records: list[dict]) -> int:
    """Apply logged records through moto as they first ran; the next sequence number."""
    import sys

    from moto.moto_api._internal import mock_random

    seq = 0
    for record in records:
        _Clock.now = record["time"]
        mock_random.seed(record["seq"])
        if record.get("release"):
            release_inflight()
        else:
            body = record["body"]
            call_wsgi(app, {**record["environ"], "wsgi.input": io.BytesIO(body),
                            "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                            "wsgi.multithread": False, "wsgi.multiprocess": False,
                            "wsgi.run_once": False})
        seq = record["seq"] + 1
    _Clock.now = None
    return seq


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


def dump_backends(segment: int = 0, seq: int = 0) -> bytes:
    """The state, with the first log segment and sequence number it does not include."""
    from moto.backends import get_backend

    _register_reducers()
    return pickle.dumps({"format": _FORMAT, "segment": segment, "seq": seq,
                         "backends": {name: dict(get_backend(name)) for name in SERVICES}},
                        protocol=pickle.HIGHEST_PROTOCOL)


def load_backends(data: bytes) -> tuple[int, int]:
    """Restore a snapshot; the log segment and sequence number to continue from."""
    from moto.backends import get_backend

    state = pickle.loads(data)
    if state.get("format") == _FORMAT:
        segment, seq, backends = state["segment"], state["seq"], state["backends"]
    else:  # from before the log: the bare backends
        segment, seq, backends = 0, 0, state
    for name, accounts in backends.items():
        backend = get_backend(name)
        backend.clear()
        backend.update(accounts)
    return segment, seq


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn one, even after a power cut.

    Safe in a child forked from a threaded process: only os calls, no locks (tempfile's name
    generator takes one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
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
    """moto on 127.0.0.1:<port> (0 picks a free port), durable in `data_dir` if one is given.

    With `access_key`, a request signed with any other access key id (or unsigned) gets 403
    before it reaches moto. moto's state is global to the process: run one server at a time
    (each starts empty, or with what its data directory holds).
    """

    def __init__(self, data_dir: Path | None = None, port: int = 0,
                 access_key: str | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.snapshot_path = self.data_dir / SNAPSHOT_FILE if self.data_dir is not None else None
        self._port = port
        self._access_key = access_key
        self._app: SerialisedApp | None = None
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()  # one snapshot at a time, in log order
        self._endpoint = ""
        self.last_snapshot_seconds: float | None = None
        self.last_snapshot_blocked_seconds: float | None = None  # requests held meanwhile
        self.replayed_records = 0
        self._log_bytes = 0  # replayed at start and not compacted since
        self._snapshot_bytes = 0  # the size of the last snapshot

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def journal(self) -> Journal | None:
        return self._app.journal if self._app is not None else None

    @property
    def short_polls(self) -> int:
        """ReceiveMessage calls made into moto on behalf of waiting long polls, so far."""
        return self._app.short_polls if self._app is not None else 0

    def start(self) -> MotoServer:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from labelloop.local.fastdynamo import install

        install()  # a request's cost independent of the table's size (same answers)
        # moto's state is the process's: a server before this one (a test's other stack) left
        # its tables and queued messages there, which this server's workers would take up.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

        class QuietHandler(keepalive.KeepAliveHandler, MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass  # a line per AWS call drowns the API's own log

        # As moto's ThreadedMotoServer builds it, with the serialising middleware around it.
        moto_app = _dispatcher(DomainDispatcherApplication)(create_backend_app)
        journal = self._restore(moto_app) if self.data_dir is not None else None
        self._app = SerialisedApp(moto_app, journal, self._access_key)
        self._server = make_server("127.0.0.1", self._port, self._app, threaded=True,
                                   request_handler=QuietHandler)
        self._endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                             name="moto-server", daemon=True)]
        if journal is not None:
            self._threads.append(threading.Thread(target=self._compact_loop,
                                                  name="moto-compact", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def _restore(self, moto_app) -> Journal:
        """Snapshot, then the log after it; a journal continuing both."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _Clock.install()
        _register_reducers()
        segment, seq = 0, 0
        if self.snapshot_path.exists():
            try:
                raw = self.snapshot_path.read_bytes()
                segment, seq = load_backends(raw)
                self._snapshot_bytes = len(raw)
            except Exception as e:  # e.g. written by another moto version
                raise RuntimeError(f"cannot restore {self.snapshot_path} ({e!r}); move it "
                                   "away to start empty") from e
        directory = self.data_dir / WAL_DIR
        last = segment - 1
        for number, records in wal.replayable(directory, segment):
            if records:
                seq = max(seq, replay(moto_app, records))
            self.replayed_records += len(records)
            self._log_bytes += wal.segment_path(directory, number).stat().st_size
            last = number
        log_ = wal.Log(directory, last + 1)
        log_.drop_before(segment)  # left by a stop or compaction cut short after its snapshot
        journal = Journal(log_, seq)
        journal.release()
        log_.durable(log_.written)
        if self.replayed_records:
            log.info("replayed %d logged AWS requests", self.replayed_records)
        return journal

    def snapshot(self, *, close: bool = False) -> None:
        """Compact now: a snapshot of the state as of now, and the log it includes dropped.
        With `close`, refuse every request from then on and snapshot in this process."""
        journal = self.journal
        with self._write_lock:
            started = time.perf_counter()
            pid = None
            with self._app.lock:
                if close:
                    self._app.closed = True
                    self._app.lock.notify_all()
                if journal is None:
                    return
                segment = journal.log.rotate()
                self._log_bytes = 0
                if not close and hasattr(os, "fork"):
                    pid = os.fork()
                    if pid == 0:
                        self._child_snapshot(segment, journal.seq)
                data = None if pid else dump_backends(segment, journal.seq)
            self.last_snapshot_blocked_seconds = time.perf_counter() - started
            if pid:
                _, status = os.waitpid(pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    # The log since the previous snapshot is kept: nothing is lost.
                    raise RuntimeError(f"snapshot child failed ({status:#x})")
            else:
                write_atomically(self.snapshot_path, data)
            journal.log.drop_before(segment)
            self._snapshot_bytes = self.snapshot_path.stat().st_size
            if close:
                journal.log.close()
            self.last_snapshot_seconds = time.perf_counter() - started

    def _child_snapshot(self, segment: int, seq: int) -> None:
        """In the forked child: pickle, write, exit; never return (nor run atexit hooks)."""
        code = 1
        try:
            write_atomically(self.snapshot_path, dump_backends(segment, seq))
            code = 0
        finally:
            os._exit(code)

    def _compact_loop(self) -> None:
        # Replay time on the next start grows with the log; snapshots are cheap for requests
        # (a fork), but a whole pickle of work for the machine (see COMPACT_BYTES).
        while not self._stopping.wait(_COMPACT_CHECK):
            log_ = self.journal.log
            size = self._log_bytes + log_.segment_bytes
            if size > max(COMPACT_BYTES, self._snapshot_bytes):
                try:
                    self.snapshot()
                except Exception:
                    log.exception("moto snapshot failed; the log is kept, retrying later")

    def stop(self) -> None:
        """Stop intake and write the final snapshot first, then shut down."""
        if self._server is None:
            return
        self._stopping.set()
        self.snapshot(close=True)
        self._server.shutdown()
        self._server.server_close()
        keepalive.close_all(self._server)
        for t in self._threads:
            t.join(timeout=5)
        self._server = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
