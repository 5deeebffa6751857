"""Each function's logs, metrics and (opt-in) traces, under its own service name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_api import make_function


def emitted(out: str) -> list[dict]:
    """The embedded-metric-format documents among these output lines."""
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def test_invokes_and_training_runs_are_counted(api, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    fid = make_function(api, train=False)
    capsys.readouterr()
    assert all(not r["batchItemFailures"] for r in api.train())
    (doc,) = emitted(capsys.readouterr().out)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "labelloop" and doc["service"] == "labelloop-training"
    assert (doc["ModelVersionsTrained"], doc["ModelVersionsPromoted"]) == ([1.0], [1.0])
    for _ in range(2):
        assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"})[0] == 200
    assert api.call("GET", f"/v1/functions/{fid}")[0] == 200  # counts nothing
    docs = emitted(capsys.readouterr().out)
    assert [(d["service"], d["Invokes"]) for d in docs] == [("labelloop-api", [1.0])] * 2


TRACED = """
import os, sys
os.environ.update(LABELLOOP_TABLE="t", LABELLOOP_INVOKES_TABLE="i", LABELLOOP_BUCKET="b",
                  LABELLOOP_TRACING=sys.argv[1], POWERTOOLS_METRICS_DISABLED="1")
from labelloop.local import LambdaContext
from labelloop.observability import of
from labelloop.settings import Settings

@of("probe").entry_point(Settings)
def handler(event, context):
    return event["n"] + 1

print(handler({"n": 1}, LambdaContext("probe")), "aws_xray_sdk" in sys.modules)
"""


@pytest.mark.parametrize(("tracing", "imported"), [("false", "False"), ("true", "True")])
def test_tracing_is_opt_in(tracing, imported):
    out = subprocess.run([sys.executable, "-c", TRACED, tracing], capture_output=True,
                         text=True, check=True).stdout
    # Without tracing the X-Ray SDK is never imported (about 200 ms of a cold start).
    assert out.split()[-2:] == ["2", imported]


def test_log_lines_follow_stdout_as_it_is_when_written(capsys):
    """The emulator swaps `sys.stdout` per invocation and pytest per test: a line goes to the
    stdout of its moment, never to one closed since."""
    import contextlib
    import io
    import logging

    from labelloop.observability import of

    logger = of("probe").logger
    with contextlib.redirect_stdout(io.StringIO()) as earlier:
        logger.warning("first")
        assert '"message":"first"' in earlier.getvalue()
    earlier.close()
    logger.warning("second")
    logging.getLogger("labelloop.some.module").warning("third")  # the package's loggers too
    out, err = capsys.readouterr()
    assert '"message":"second"' in out and '"message":"third"' in out
    assert '"service":"labelloop-probe"' in out and "Logging error" not in err
