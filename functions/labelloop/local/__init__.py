"""The local stack: moto for AWS, an HTTP front for API Gateway, SQS pollers for Lambda triggers.

The real Lambda handlers run in this process, one thread per request or batch. Entry point:
`labelloop.local.stack.LocalStack` (`labelloop local` on the command line).
"""

from __future__ import annotations

import ctypes
import signal
import time
import uuid
from dataclasses import dataclass, field

ACCOUNT_ID = "123456789012"  # the account moto files everything under
REGION = "us-east-1"
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """MALLOC_ARENA_MAX from inside the process (call before its threads start); False where
    glibc's mallopt is missing or refuses.

    glibc gives threads malloc arenas of their own, up to eight per core, and each keeps what
    its peak needed. With a thread per request, 8 clients x 500 invokes on a 20,000-sample
    function grew the stack's RSS by 315 MB at 39 req/s with the default, by 180 MB at 53
    req/s with 2 arenas (the same run, scripts/bench_load.py's texts)."""
    try:
        return ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, n) == 1
    except (OSError, AttributeError):
        return False


@dataclass
class LambdaContext:
    """What a Lambda handler reads from its context (powertools' logger reads all of it)."""

    function_name: str
    timeout_seconds: float = 30.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Signalled(Exception):
    pass


def wait_for_signal() -> int:
    """Block the main thread until SIGINT or SIGTERM and return its number.

    Later signals are ignored from then on, so that a second Ctrl-C cannot cut short the final
    snapshot that follows.
    """
    def handler(signum, _frame):
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        raise _Signalled(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    try:
        while True:
            time.sleep(3600)
    except _Signalled as stop:
        return stop.args[0]
