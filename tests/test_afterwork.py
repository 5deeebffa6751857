"""Work deferred until after the response: inline, through a runner, and as a Lambda extension."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labelloop import afterwork


@pytest.fixture
def runner():
    r = afterwork.Runner()
    previous = afterwork.install(r)
    yield r
    afterwork.install(previous)


def test_outside_a_request_work_runs_at_once():
    done = []
    afterwork.later(done.append, 1)
    assert done == [1]


def test_without_a_runner_collected_work_runs_as_the_request_ends():
    done = []
    with afterwork.collect("req-1"):
        afterwork.later(done.append, "written")
        assert done == []  # not while the handler still runs
    assert done == ["written"]


def test_a_runner_runs_the_work_only_when_finished_and_waits_for_the_handoff(runner):
    done, started = [], threading.Event()

    def handler():
        with afterwork.collect("req-2"):
            afterwork.later(done.append, "a")
            afterwork.later(done.append, "b")
            started.wait(5)

    t = threading.Thread(target=handler)
    t.start()
    assert done == []
    finished = []
    waiter = threading.Thread(target=lambda: finished.append(runner.finish("req-2", 5)))
    waiter.start()
    started.set()  # the handler returns only now; finish was already waiting for it
    t.join(5)
    waiter.join(5)
    assert finished == [2] and done == ["a", "b"]
    assert runner.finish("req-2", timeout=0.05) == 0  # handed over once, run once


def test_alongside_work_runs_with_what_follows_it_after_what_precedes_it(runner, caplog):
    """An `alongside` item starts once the work before it is done and overlaps the work after
    it; the request's work is done only when it is, and its failure is logged as any."""
    events, overlap = [], threading.Barrier(2, timeout=5)

    def first():
        events.append("keep")

    def record():
        events.append("record started")
        overlap.wait()  # returns only if the capture runs at the same time
        events.append("record done")
        raise RuntimeError("record write failed")

    def capture():
        overlap.wait()
        events.append("capture done")

    with afterwork.collect("req-side"):
        afterwork.later(first)
        afterwork.alongside(record)
        afterwork.later(capture)
    with caplog.at_level(logging.ERROR, logger="labelloop.afterwork"):
        assert runner.finish("req-side") == 3
    assert events[:2] == ["keep", "record started"]
    assert sorted(events[2:]) == ["capture done", "record done"]  # both, before finish returned
    assert "record write failed" in caplog.text


def test_a_failing_item_is_logged_and_the_rest_still_runs(runner, caplog):
    done = []

    def broken():
        raise RuntimeError("dynamodb said no")

    with afterwork.collect("req-3"):
        afterwork.later(broken)
        afterwork.later(done.append, "after")
    with caplog.at_level(logging.ERROR, logger="labelloop.afterwork"):
        assert runner.finish("req-3") == 2
    assert done == ["after"]
    assert "broken" in caplog.text and "dynamodb said no" in caplog.text


class _RuntimeApi(BaseHTTPRequestHandler):
    """Lambda's Extensions API as documented: register, then one INVOKE event per `next` call,
    each `next` after the first also meaning "done with the previous invoke"."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        srv = self.server
        length = int(self.headers["Content-Length"])
        srv.registered.append((self.headers["Lambda-Extension-Name"],
                               json.loads(self.rfile.read(length))))
        self._reply({"functionName": "api"}, {"Lambda-Extension-Identifier": "ext-1"})

    def do_GET(self):
        srv = self.server
        assert self.headers["Lambda-Extension-Identifier"] == "ext-1"
        srv.next_calls.append(list(srv.done))  # what had run when the extension asked
        request_id = srv.invokes.get()  # blocks until the test starts an invoke
        self._reply({"eventType": "INVOKE", "requestId": request_id,
                     "deadlineMs": 4102444800000}, {})

    def _reply(self, body, headers):
        data = json.dumps(body).encode()
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_the_lambda_extension_runs_an_invokes_work_before_it_asks_for_the_next_event():
    import queue

    server = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeApi)
    server.registered, server.next_calls, server.done = [], [], []
    server.invokes = queue.Queue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runner = afterwork.Runner()
    previous = afterwork.install(runner)
    try:
        afterwork.LambdaExtension(f"127.0.0.1:{server.server_address[1]}", runner).start()
        assert server.registered == [("labelloop-afterwork", {"events": ["INVOKE"]})]
        for request_id in ("r1", "r2"):
            server.invokes.put(request_id)  # Lambda sends INVOKE to the runtime and extension
            with afterwork.collect(request_id):
                afterwork.later(server.done.append, request_id)
        for _ in range(100):
            if len(server.next_calls) == 3:
                break
            threading.Event().wait(0.05)
        # First `next` at registration; each later one only after that invoke's work ran.
        assert server.next_calls == [[], ["r1"], ["r1", "r2"]]
    finally:
        afterwork.install(previous)
        server.invokes.put("end")
        server.shutdown()


def test_runner_waits_idle_until_handed_work_has_run():
    import threading

    from labelloop.afterwork import Runner

    runner, release, done = Runner(), threading.Event(), []
    runner.handoff("r1", [(lambda: (release.wait(5), done.append(1)), (), False)])
    assert not runner.wait_idle(timeout=0.05)  # handed over, not yet run
    t = threading.Thread(target=runner.finish, args=("r1",))
    t.start()
    assert not runner.wait_idle(timeout=0.05)  # running
    release.set()
    assert runner.wait_idle(timeout=5) and done == [1]
    t.join()
