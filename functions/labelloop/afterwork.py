"""Work that runs after the response has gone out: the invoke path's writes.

A use case hands work to `later(fn, *args)`; an entry point runs the request inside
`collect(request_id)`. What happens to the collected work then depends on who runs the handler:

- in Lambda, an internal extension (`LambdaExtension`: a thread of this process registered with
  the Extensions API during init) runs it once the handler has returned, and only then tells
  Lambda it is done with the invoke. The runtime posts the response as soon as the handler
  returns, so the caller never waits for the work, and Lambda does not freeze or recycle the
  environment before the work is done;
- the local gateway runs it after it has sent the response (the same contract);
- anywhere else (tests, scripts, the Python API) nothing is deferred: the work runs before
  `collect` returns.

A failure cannot reach a caller who already has its answer: it is logged with the work's name
(botocore has already retried it).

Work a container holds across invokes registers with `at_shutdown`; `shutdown` runs it, on
Lambda's SIGTERM (sent to the runtime before an environment is shut down, since an extension is
registered) and at the local stack's stop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar

log = logging.getLogger(__name__)

Work = list[tuple[Callable, tuple, bool]]  # (fn, args, alongside the work after it)
_collecting: ContextVar[Work | None] = ContextVar("labelloop_afterwork", default=None)


class Runner:
    """Runs what requests collected, after their responses: `finish(request_id)` waits for the
    request's handler to hand its work over (it may still be running), then runs it."""

    def __init__(self):
        self._handed: dict[str, Work] = {}
        self._running = 0
        self._waiting = 0  # finish() calls still waiting for their handoff
        self._cond = threading.Condition()

    def handoff(self, request_id: str, work: Work) -> None:
        with self._cond:
            self._handed[request_id] = work
            self._cond.notify_all()

    def finish(self, request_id: str, timeout: float = 30.0) -> int:
        """Run the request's work; the number of items run (0 if none came within timeout)."""
        with self._cond:
            self._waiting += 1
            try:
                handed = self._cond.wait_for(lambda: request_id in self._handed, timeout)
            finally:
                self._waiting -= 1
                self._cond.notify_all()
            if not handed:
                log.error("no work handed over for request %s within %.0f s", request_id, timeout)
                return 0
            work = self._handed.pop(request_id)
            self._running += 1
        try:
            run(work)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
        return len(work)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every handed-over request's work has run and no finish() waits for a
        handoff. Work is handed over before the response goes out, so once a caller has its
        responses this covers their work."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._handed and not self._running and not self._waiting, timeout)


_runner: Runner | None = None


def install(runner: Runner | None) -> Runner | None:
    """Make `runner` run collected work from now on (None: run it inline); returns the previous
    one."""
    global _runner
    previous, _runner = _runner, runner
    return previous


def later(fn: Callable, *args) -> None:
    """Run `fn(*args)` after the response, or now outside of `collect`."""
    _defer(fn, args, False)


def alongside(fn: Callable, *args) -> None:
    """As `later`, but at the same time as the work deferred after it: for a write that
    nothing after it depends on (an invoke's record beside its capture decision), so that the
    invoke's work takes the longer of the two instead of both."""
    _defer(fn, args, True)


def _defer(fn: Callable, args: tuple, parallel: bool) -> None:
    work = _collecting.get()
    if work is None:
        fn(*args)
    else:
        work.append((fn, args, parallel))


@contextmanager
def collect(request_id: str) -> Iterator[None]:
    work: Work = []
    token = _collecting.set(work)
    try:
        yield
    finally:
        _collecting.reset(token)
        runner = _runner
        if runner is None:
            run(work)
        else:
            runner.handoff(request_id, work)


def run(work: Work) -> None:
    """Each item in order, `alongside` ones in a thread of their own; returns when all are
    done (Lambda may freeze the environment once the extension says so)."""
    started = []
    for fn, args, parallel in work:
        if parallel:
            started.append(_side_pool().submit(_logged, fn, args))
        else:
            _logged(fn, args)
    for future in started:
        future.result()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _side_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:  # built on first use, once per container
            _pool = ThreadPoolExecutor(8, thread_name_prefix="afterwork")
        return _pool


def _logged(fn: Callable, args: tuple) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("after-response work %s failed", getattr(fn, "__qualname__", repr(fn)))


class LambdaExtension:
    """This process as an internal Lambda extension that runs each invoke's collected work.

    Must start during init (at import of the handler module), before the runtime asks for its
    first event: Lambda refuses registrations after that.
    """

    NAME = "labelloop-afterwork"

    def __init__(self, runtime_api: str, runner: Runner):
        self._base = f"http://{runtime_api}/2020-01-01/extension"
        self._runner = runner
        self._id = ""

    def start(self) -> LambdaExtension:
        request = urllib.request.Request(
            f"{self._base}/register", data=json.dumps({"events": ["INVOKE"]}).encode(),
            headers={"Lambda-Extension-Name": self.NAME}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            self._id = response.headers["Lambda-Extension-Identifier"]
        threading.Thread(target=self._loop, name=self.NAME, daemon=True).start()
        return self

    def _loop(self) -> None:
        request = urllib.request.Request(f"{self._base}/event/next",
                                         headers={"Lambda-Extension-Identifier": self._id})
        while True:
            # Asking for the next event is what tells Lambda this invoke's work is done.
            with urllib.request.urlopen(request) as response:
                event = json.load(response)
            if event.get("eventType") == "INVOKE":
                remaining = event.get("deadlineMs", 0) / 1000 - time.time()
                self._runner.finish(event["requestId"], timeout=max(remaining, 0.1))


def start_in_lambda() -> LambdaExtension | None:
    """In a Lambda environment, register the extension, install its runner, and run the
    shutdown work on SIGTERM (which Lambda sends the runtime before it shuts an environment
    down, because an extension is registered)."""
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not runtime_api or _runner is not None:
        return None
    runner = Runner()
    extension = LambdaExtension(runtime_api, runner).start()
    install(runner)
    signal.signal(signal.SIGTERM, _on_sigterm)
    return extension


def _on_sigterm(signum, frame) -> None:
    shutdown()
    sys.exit(0)


_at_shutdown: list[Callable[[], object]] = []
_at_shutdown_lock = threading.Lock()


def at_shutdown(fn: Callable[[], object]) -> None:
    """Run `fn()` when the process shuts down (`shutdown`), once however often it is
    registered: what the containers hold across invokes (`container._flush_current`)."""
    with _at_shutdown_lock:
        if fn not in _at_shutdown:
            _at_shutdown.append(fn)


def shutdown() -> None:
    """Run what `at_shutdown` registered, each once (Lambda's SIGTERM, the local stack's
    stop); a failure is logged, and the rest still run."""
    with _at_shutdown_lock:
        hooks = list(_at_shutdown)
        _at_shutdown.clear()
    for fn in hooks:
        _logged(fn, ())
