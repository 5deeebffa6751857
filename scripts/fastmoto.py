"""moto in a process of its own for benchmarks and evaluations, with its DynamoDB made fast.

The speed-ups (the same answers, without moto's O(table) steps) live in
`labelloop.local.fastdynamo`, which the local stack and the tests use too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from labelloop.local.fastdynamo import speed_up_moto  # noqa: F401  (scripts import it here)


class MotoProcess:
    def __init__(self, endpoint: str, pid: int):
        self.endpoint, self.pid = endpoint, pid

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far (Linux /proc): work AWS would do elsewhere."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def moto_process(fast: bool = True):
    """moto in server mode in a process of its own (a MotoProcess): its CPU time does not
    compete with the measured code for this process's GIL, as AWS's would not."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; sys.path.insert(0, {here!r}); import fastmoto; "
            "{patch}from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"
            ).format(here=str(Path(__file__).parent), port=port,
                     patch="fastmoto.speed_up_moto(); " if fast else "")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield MotoProcess(endpoint, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
