"""The queue workers in a process of their own, as Lambda runs them in containers of their own.

In the API's process a training run took the CPU and the GIL from the API: during a run on
3,000 samples, sample POSTs went from 12 to 3.5 per second (up to 7.7 s each), and at 9,500
samples one timed out after 60 s. In this process the run shares only the machine's cores,
and at a lower priority (`NICENESS`): on a laptop the API is what someone is waiting for,
while a run's minutes matter less (in AWS each has CPUs of its own).

The parent starts `python -m labelloop.local.workers PARENT_PID SPEC` with the stack's
environment; the child runs one `QueuePoller` per queue until SIGTERM (intake stops, a batch in
its handler is made visible again), and dies with its parent, so a SIGKILLed stack leaves no
worker behind.
Whether the workers are idle is read from the queues: a batch in a handler is in flight.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

from pydantic import BaseModel

from labelloop.local import limit_malloc_arenas, wait_for_signal
from labelloop.local.poller import IDLE_ATTRIBUTES, QueuePoller

_PR_SET_PDEATHSIG = 1
NICENESS = 10


class Worker(BaseModel):
    """One event source mapping: the queue, the handler it invokes, how."""

    queue_url: str
    handler: str  # dotted path
    batch_size: int
    retry_seconds: int
    function_name: str


class Spec(BaseModel):
    workers: list[Worker]


def _die_with(parent: int) -> None:
    """SIGKILL this process when the stack's dies (Linux). Set here rather than between fork
    and exec, which is unsafe in a parent with threads; a parent gone already is caught by
    the check after."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class Workers:
    """The child process, seen from the stack."""

    def __init__(self, workers: list[Worker]):
        self.spec = Spec(workers=workers)
        self._proc: subprocess.Popen | None = None
        self._sqs = None

    def start(self) -> Workers:
        import boto3

        if self.spec.workers:
            # The parent's import path, so that handlers given by tests resolve there too.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "labelloop.local.workers", str(os.getpid()),
                 self.spec.model_dump_json()], env=env)
        self._sqs = boto3.session.Session().client("sqs")
        return self

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until no message is visible, in flight (in a handler, or waiting out a retry) or
        delayed on any of the queues."""
        deadline = time.monotonic() + timeout
        while True:
            if all(not any(int(v) for v in self._sqs.get_queue_attributes(
                    QueueUrl=w.queue_url, AttributeNames=IDLE_ATTRIBUTES)["Attributes"].values())
                   for w in self.spec.workers):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop intake (the child releases a batch it is handling) and wait for it to exit."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:  # a handler that ignores the stop
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def main(argv: list[str]) -> int:
    from labelloop.local.stack import resolve  # stack imports this module

    _die_with(int(argv[0]))
    os.nice(NICENESS)
    limit_malloc_arenas()
    spec = Spec.model_validate_json(argv[1])
    pollers = [QueuePoller(w.queue_url, resolve(w.handler), batch_size=w.batch_size,
                           retry_seconds=w.retry_seconds, function_name=w.function_name).start()
               for w in spec.workers]
    wait_for_signal()
    for poller in pollers:
        poller.close()
    # A handler still running after this is cut off: its batch is visible again already, and
    # runs again after a restart.
    stopped = [poller.stop(timeout=1.0) for poller in pollers]
    if not all(stopped):
        # Not through the interpreter's exit: it joins executor threads, which may wait on the
        # cut-off handler, and so hold up the stack's stop (30 s, then a kill).
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
