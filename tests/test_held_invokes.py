"""What a container holds across invokes. Held invokes (labelloop/held_invokes.py,
`LABELLOOP_HELD_INVOKES` > 1): their work is done when enough are held, when the oldest has
waited the delay, and at shutdown; records in one write, captures in one transaction, drift
counted; a failed write holds them again; off by default. Drift counts: written at shutdown
too. Shutdown itself: on Lambda's SIGTERM, each step once."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from test_api import make_function
from test_capture import TEXTS, policy, queue

from labelloop import afterwork
from labelloop.domain import InvokeItem
from labelloop.held_invokes import HeldInvokes


@pytest.fixture
def lambda_like():
    """A runner as the Lambda extension has: each invoke's work runs when `finish` is called,
    after its response."""
    runner = afterwork.Runner()
    previous = afterwork.install(runner)
    yield runner
    afterwork.install(previous)
    afterwork.shutdown()  # nothing registered by one test runs in another


def _invoke(api, runner, fid: str, text: str, capture: bool = False) -> str:
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": text},
                              query="" if capture else "capture=false")
    assert status == 200, out
    assert runner.finish("test", timeout=5) > 0
    return out["sampleId"]


def _stored(api, fid: str) -> set[str]:
    status, records, _ = api.call("GET", f"/v1/functions/{fid}/invokes")
    assert status == 200, records
    return {r["sampleId"] for r in records}


def _counted(api, fid: str) -> int:
    """The invokes the function's drift counters hold."""
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/drift")
    assert status == 200, body
    return sum(day["invokes"] for day in body["days"])


@pytest.fixture
def batch_of_3(monkeypatch):
    """Set before the `api` fixture reads the settings."""
    monkeypatch.setenv("LABELLOOP_HELD_INVOKES", "3")
    monkeypatch.setenv("LABELLOOP_HELD_INVOKES_DELAY_SECONDS", "2.5")
    monkeypatch.setenv("LABELLOOP_DRIFT_FLUSH_INVOKES", "1")  # each count written at once


@pytest.fixture
def short_delay(monkeypatch):
    monkeypatch.setenv("LABELLOOP_HELD_INVOKES", "25")
    monkeypatch.setenv("LABELLOOP_HELD_INVOKES_DELAY_SECONDS", "0.3")


def test_records_wait_for_a_full_batch_then_land_together_and_the_rest_at_shutdown(
        batch_of_3, api, lambda_like):
    fid = make_function(api)
    first = [_invoke(api, lambda_like, fid, f"refund my order number {i}") for i in range(2)]
    assert _stored(api, fid) == set()  # held: the batch is not full and nothing has waited
    third = _invoke(api, lambda_like, fid, "refund my order number 2")
    assert _stored(api, fid) == {*first, third}
    fourth = _invoke(api, lambda_like, fid, "the app crashes at login")
    assert _stored(api, fid) == {*first, third}
    afterwork.shutdown()  # as on Lambda's SIGTERM or the local stack's stop
    assert _stored(api, fid) == {*first, third, fourth}


def test_held_invokes_are_captured_and_counted_for_drift_when_their_work_is_done(
        batch_of_3, api, lambda_like):
    fid = make_function(api)
    policy(api, fid, {"random": {"rate": 1.0, "quota": 10}, "uncertainty": {"quota": 0},
                      "rare_class": {"quota": 0}})

    first = [_invoke(api, lambda_like, fid, text, capture=True) for text in TEXTS[:2]]
    assert queue(api, fid) == [] and _counted(api, fid) == 0
    third = _invoke(api, lambda_like, fid, TEXTS[2], capture=True)
    captured = queue(api, fid)
    assert {c["id"] for c in captured} == {*first, third}
    assert {c["captureReason"] for c in captured} == {"random"}
    assert _counted(api, fid) == 3 and _stored(api, fid) == {*first, third}


def test_drift_counts_not_yet_written_are_written_at_shutdown(api):
    """By default a container writes its drift counts every 100 invokes; at its shutdown the
    rest (Lambda's SIGTERM, the local stack's stop)."""
    fid = make_function(api)
    for text in TEXTS[:3]:
        assert api.call("POST", f"/v1/functions/{fid}/invoke", {"data": text},
                        query="capture=false")[0] == 200

    assert _counted(api, fid) == 0
    afterwork.shutdown()
    assert _counted(api, fid) == 3


def test_by_default_each_invoke_writes_its_own_record(api, lambda_like):
    fid = make_function(api)
    sid = _invoke(api, lambda_like, fid, "refund my order")
    assert _stored(api, fid) == {sid}


def test_feedback_on_a_held_invoke_finds_it_once_the_delay_has_passed(short_delay, api,
                                                                      lambda_like):
    """Under steady traffic a held record lands within the delay, inside the 3 s that
    feedback on a fresh sampleId waits for its record."""
    fid = make_function(api)
    held = _invoke(api, lambda_like, fid, "I was charged twice")
    assert _stored(api, fid) == set()
    time.sleep(0.35)
    nxt = _invoke(api, lambda_like, fid, "the page will not load")  # past the delay: both
    assert _stored(api, fid) == {held, nxt}
    status, out, _ = api.call("PUT", f"/v1/functions/{fid}/samples/{held}/annotation",
                              {"labelName": "billing"})
    assert status == 200, out
    assert out["data"] == "I was charged twice"


def _record(i: int) -> InvokeItem:
    return InvokeItem.model_validate({
        "function_id": "f1", "sample_id": f"s{i}", "data": f"text {i}", "model_version": 1,
        "label_id": "l1", "confidence": 0.5, "margin": 0.1, "created_at": 1.0e9,
        "expires_at": 4_000_000_000})


def test_a_failed_write_holds_its_records_again_and_the_next_one_writes_them(aws, caplog):
    import boto3

    from labelloop.data.codec import Tables
    from labelloop.data.invokes import Invokes
    from labelloop.resources import create_all

    dynamodb = boto3.Session().resource("dynamodb")
    # The invokes table of a stage that does not exist yet: writes fail until it does.
    later = aws["LABELLOOP_INVOKES_TABLE"].replace("test", "later")
    invokes = Invokes(Tables.of(dynamodb, aws["LABELLOOP_TABLE"], later))
    held = HeldInvokes(2, 60.0, invokes.put_many)
    assert held.add(_record(0), 0.0) == 0
    with pytest.raises(Exception, match=r"ResourceNotFound|non-existent table"):
        held.add(_record(1), 0.1)
    assert len(held) == 2  # nothing lost
    create_all(boto3.Session(), "later")
    assert held.add(_record(2), 0.2) == 3 and len(held) == 0
    assert {r["sk"] for r in dynamodb.Table(later).scan()["Items"]} == {
        "INVOKE#s0", "INVOKE#s1", "INVOKE#s2"}


def test_the_oldest_held_invokes_are_dropped_first_when_writes_fail_for_long(caplog):
    def down(records):
        raise ConnectionError("no DynamoDB")

    held = HeldInvokes(1, 60.0, down)
    with caplog.at_level(logging.ERROR, logger="labelloop.held_invokes"):
        for i in range(3):
            with pytest.raises(ConnectionError):
                held.add(_record(i), float(i))
        import labelloop.held_invokes as module

        cap, module.MAX_HELD = module.MAX_HELD, 2
        try:
            with pytest.raises(ConnectionError):
                held.add(_record(3), 3.0)
        finally:
            module.MAX_HELD = cap
    assert len(held) == 2 and "dropped the 2 oldest" in caplog.text


def test_shutdown_runs_each_registered_step_once_and_survives_a_failing_one(caplog):
    done = []

    def flush():
        done.append("flushed")

    afterwork.at_shutdown(lambda: 1 / 0)
    afterwork.at_shutdown(flush)
    afterwork.at_shutdown(flush)  # registered again: still once
    with caplog.at_level(logging.ERROR, logger="labelloop.afterwork"):
        afterwork.shutdown()
        afterwork.shutdown()
    assert done == ["flushed"] and "ZeroDivisionError" in caplog.text


def test_in_lambda_sigterm_runs_the_shutdown_steps_before_the_process_exits(tmp_path):
    """Lambda sends the runtime SIGTERM before it shuts an environment down (an extension is
    registered): the held records are written then."""
    import queue
    import threading
    from http.server import ThreadingHTTPServer

    from test_afterwork import _RuntimeApi  # Lambda's Extensions API, as documented

    server = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeApi)
    server.registered, server.next_calls, server.done = [], [], []
    server.invokes = queue.Queue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    marker = tmp_path / "flushed"
    child = textwrap.dedent(f"""
        import sys, time
        from labelloop import afterwork
        assert afterwork.start_in_lambda() is not None
        afterwork.at_shutdown(lambda: open({str(marker)!r}, "w").write("written"))
        print("ready", flush=True)
        time.sleep(30)
        sys.exit(3)
    """)
    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}"}
    proc = subprocess.Popen([sys.executable, "-c", child], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert marker.read_text() == "written"
    finally:
        proc.kill()
        server.invokes.put("end")
        server.shutdown()
