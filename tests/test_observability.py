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
        assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "refund"},
                        query="capture=false")[0] == 200
    assert api.call("GET", f"/v1/functions/{fid}")[0] == 200  # counts nothing
    docs = emitted(capsys.readouterr().out)
    service = [d for d in docs if "function" not in d]
    assert [(d["service"], d["Invokes"]) for d in service] == [("labelloop-api", [1.0])] * 2
    # Per function: rate, latency, confidence and the invoke cache (the same text twice).
    mine = [d for d in docs if d.get("function") == fid.removeprefix("function_")]
    assert len(mine) == 2 and [d["InvokeCacheHits"] for d in mine] == [[0.0], [1.0]]
    for d in mine:
        (directive,) = d["_aws"]["CloudWatchMetrics"]
        assert sorted(directive["Dimensions"][0]) == ["function", "service"]
        assert d["Invokes"] == [1.0] and d["InvokeLatency"][0] > 0
        assert 0 < d["InvokeConfidence"][0] <= 1


def test_disabled_metrics_stay_silent_past_powertools_100_value_limit(api, capsys):
    fid = make_function(api)  # the api fixture turns metrics off, as the benchmarks do
    capsys.readouterr()
    for n in range(105):
        assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": f"refund {n}"},
                        query="capture=false")[0] == 200
    assert emitted(capsys.readouterr().out) == []


def test_captures_are_counted_per_function_and_strategy(api, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    fid = make_function(api)
    status, body, _ = api.call("PUT", f"/v1/functions/{fid}/capture", {"strategies": {
        "random": {"rate": 1.0, "quota": 10}}})
    assert status == 200, body
    capsys.readouterr()
    assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "a refund, please"})[0] == 200
    (doc,) = [d for d in emitted(capsys.readouterr().out) if "Captures" in d]
    assert (doc["function"], doc["strategy"], doc["Captures"]) == (
        fid.removeprefix("function_"), "random", [1.0])


def test_drift_scores_go_out_per_function_and_the_flag_service_wide(api, capsys, monkeypatch):
    """The flag under the service dimension alone is what the stack's alarm watches."""
    from labelloop.container import deps

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    fid = make_function(api)
    d = deps()
    d.__dict__["settings"] = d.settings.model_copy(update={
        "drift_flush_invokes": 5, "drift_reference_invokes": 10, "drift_window_invokes": 10})
    capsys.readouterr()
    for i in range(20):  # flushes at 5, 10 (the reference), 15 and 20 (a window: scored)
        assert api.call("POST", f"/v1/functions/{fid}/invoke",
                        {"data": f"question {i} about my last invoice"},
                        query="capture=false")[0] == 200
    docs = emitted(capsys.readouterr().out)
    (score,) = [x for x in docs if "DriftScore" in x]
    (flag,) = [x for x in docs if "DriftFlagged" in x]
    assert score["function"] == fid.removeprefix("function_") and score["DriftScore"][0] >= 0
    assert "function" not in flag and flag["service"] == "labelloop-api"
    assert flag["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert flag["DriftFlagged"] in ([0.0], [1.0])


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
