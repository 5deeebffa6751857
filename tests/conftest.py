import base64
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
# The in-process stacks log a line per request, which would land in the output that the CLI
# tests read (the handlers write to sys.stdout as on Lambda); warnings and errors still show.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def _built(encoder: str, dim: int) -> Path:
    """The encoder, built as the README's commands build it (a no-op when up to date)."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_encoder.py"),
                    "--encoder", encoder], check=True)
    out = ROOT / "layers" / ("encoder" if encoder == "fast" else f"encoder-{encoder}")
    assert json.loads((out / "manifest.json").read_text())["dim"] == dim
    return out


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    """The default (fast) encoder."""
    return _built("fast", 384)


@pytest.fixture(scope="session")
def encoder(encoder_dir):
    from labelloop.encoder import Encoder

    return Encoder(encoder_dir)


@pytest.fixture(scope="session")
def accurate_encoder_dir() -> Path:
    """The accurate encoder (all-mpnet-base-v2)."""
    return _built("accurate", 768)


@pytest.fixture(scope="session")
def accurate_encoder(accurate_encoder_dir):
    from labelloop.encoder import Encoder

    return Encoder(accurate_encoder_dir, encoder="accurate")


@pytest.fixture(scope="session")
def image_encoder_dir() -> Path:
    """The image encoder (EfficientNet-Lite0)."""
    return _built("image", 1280)


@pytest.fixture(scope="session")
def image_encoder(image_encoder_dir):
    from labelloop.image_encoder import ImageEncoder

    return ImageEncoder(image_encoder_dir, encoder="image")


@pytest.fixture(scope="session")
def sample_photos() -> dict[str, bytes]:
    """The pinned photos of scikit-image's wheel (scripts/build_image_encoder.py): name → bytes."""
    import build_image_encoder
    from build_encoder import download

    paths = build_image_encoder.sample_photos(ROOT / ".cache" / "photos", download)
    return {name: path.read_bytes() for name, path in paths.items()}


@pytest.fixture(scope="session")
def encoders(encoder, accurate_encoder):
    """Both encoders, one ONNX session each for the whole test session."""
    from labelloop.encoder import Encoders

    both = Encoders()
    both.put(encoder)
    both.put(accurate_encoder)
    return both


# -- the API and the training worker in-process, against moto ---------------------------

CONTEXT = type("Context", (), {
    "function_name": "labelloop-test", "function_version": "$LATEST",
    "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:labelloop-test",
    "memory_limit_in_mb": 1024, "aws_request_id": "test", "log_group_name": "test",
    "log_stream_name": "test", "get_remaining_time_in_millis": staticmethod(lambda: 30000)})()


def sqs_event(msgs: list[dict], queue: str) -> dict:
    """The event an SQS event source mapping sends for these received messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"], "attributes": m["Attributes"], "messageAttributes": {},
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue}",
        "awsRegion": "us-east-1"} for m in msgs]}


class Api:
    """Drives the real Lambda handlers with API Gateway v2 and SQS events."""

    def __init__(self, env: dict, client_id: str, client_secret: str):
        self.env = env
        self.tokens: dict[str, str] = {}
        self.default_client = (client_id, client_secret)

    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        cid, secret = (client_id, client_secret) if client_id else self.default_client
        if cid not in self.tokens:
            status, body, _ = self.call(
                "POST", "/connect/token", form=f"client_id={cid}&client_secret={secret}"
                "&grant_type=client_credentials", token=None)
            assert status == 200, body
            self.tokens[cid] = body["access_token"]
        return self.tokens[cid]

    def call(self, method: str, path: str, body=None, query: str = "", token: str | None = "",
             form: str | None = None, raw: str | None = None, headers: dict | None = None):
        from labelloop.handlers.api import handler

        headers = {"content-type": "application/x-www-form-urlencoded" if form is not None
                   else "application/json", **(headers or {})}
        if token == "":
            token = self.token()
        if token:
            headers["authorization"] = f"Bearer {token}"
        params = {}
        for part in filter(None, query.split("&")):
            k, _, v = part.partition("=")
            params[k] = v
        payload = form if form is not None else raw if raw is not None else (
            None if body is None else json.dumps(body))
        event = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": headers, "queryStringParameters": params or None,
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "pytest"},
                               "requestId": "test", "routeKey": "$default",
                               "stage": "$default", "timeEpoch": 0},
            "body": payload, "isBase64Encoded": False}
        resp = handler(event, CONTEXT)
        text, headers = resp.get("body") or "", resp.get("headers", {})
        if resp.get("isBase64Encoded"):  # a binary answer (an image), as the gateway decodes it
            return resp["statusCode"], base64.b64decode(text), headers
        is_json = headers.get("Content-Type", "application/json") == "application/json"
        return resp["statusCode"], (json.loads(text) if is_json and text else text), headers

    def train(self) -> list[dict]:
        """Run the training worker on every queued message, as the event source mapping
        would; returns the handler's responses."""
        import boto3

        from labelloop.handlers.training import handler

        sqs, url, out = boto3.client("sqs"), self.env["LABELLOOP_TRAINING_QUEUE_URL"], []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       AttributeNames=["All"]).get("Messages", [])
            if not msgs:
                return out
            result = handler(sqs_event(msgs, "training"), CONTEXT)
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for m in msgs:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            out.append(result)
            if failed:
                return out


@pytest.fixture
def aws(monkeypatch):
    """A fresh moto account with labelloop's resources; the app's container points at it."""
    import boto3
    from moto import mock_aws

    from labelloop.local.fastdynamo import install

    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "POWERTOOLS_METRICS_DISABLED": "1",
                 "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "0", "LABELLOOP_CACHE_SECONDS": "0"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    install()  # the moto the local stack runs
    with mock_aws():
        from labelloop.resources import create_all

        env = create_all(boto3.Session(), "test")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield env


def install_containers(encoders) -> None:
    """The API's and the batch worker's containers, on the test session's encoders (one ONNX
    session per encoder); the training worker's, which has no encoder, is built on first use."""
    from labelloop import container
    from labelloop.settings import ApiSettings, BatchSettings

    built = [container.Deps(settings_cls=cls) for cls in (ApiSettings, BatchSettings)]
    for d in built:
        d.__dict__["encoders"] = encoders
    container.reset(*built)


@pytest.fixture
def api(aws, encoders):
    from labelloop import container
    from labelloop.auth import register_client

    install_containers(encoders)
    register_client("client-a", "secret-a")
    register_client("client-b", "secret-b")
    yield Api(aws, "client-a", "secret-a")
    container.reset()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, encoder_dir):
    """The real local stack on port 5000 (the SDK's requirement), per test module: moto's
    in-process mock (the `aws` fixture) must not run while its pollers talk to the server."""
    import os

    from labelloop.local.stack import LocalStack

    saved = {k: os.environ.get(k) for k in ("LABELLOOP_TRAIN_DEBOUNCE_SECONDS",)}
    os.environ["LABELLOOP_TRAIN_DEBOUNCE_SECONDS"] = "1"
    # pytest-xdist runs modules in parallel (scripts/test.sh): the modules that want port 5000
    # take turns. The lock file sits in this run's temporary root, shared by its workers.
    lock_path = tmp_path_factory.getbasetemp().parent / "port-5000.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack = LocalStack(tmp_path_factory.mktemp("local-stack"), port=5000, stage="test")
        with stack:
            yield stack
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def isolate_stack_env(mp: pytest.MonkeyPatch, encoder_dir: Path) -> None:
    """For a module's own LocalStack: train as soon as asked, the built encoder, and no
    client settings from the caller's environment."""
    mp.setenv("LABELLOOP_TRAIN_DEBOUNCE_SECONDS", "0")
    mp.setenv("LABELLOOP_ENCODER_DIR", str(encoder_dir))
    for var in ("LABELLOOP_CLIENT_ID", "LABELLOOP_CLIENT_SECRET", "LABELLOOP_URL"):
        mp.delenv(var, raising=False)


def trained_function(stack, client, name: str, labels: dict[str, str],
                     samples: list[tuple[str, str]], timeout: float = 90) -> str:
    """A function with these labels and samples, once its model is live and no retrain is
    left queued (so that none replaces the model under the test)."""
    import time

    fid = client.create_function(name)["id"]
    for label, description in labels.items():
        client.create_label(fid, label, description)
    for text, label in samples:
        client.create_sample(fid, text, label)
    deadline = time.monotonic() + timeout
    while client.get_function(fid).get("liveModelVersion") is None:
        assert time.monotonic() < deadline, f"no model after {timeout:g} s"
        time.sleep(0.2)
    assert stack.wait_idle(timeout=timeout)
    return fid


# -- the console's browser tests ---------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the console tests drive Debian's chromium "
                    "(scripts/test.sh installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (empty session and local storage) per test. The test fails on
    any script error or CSP violation the page reports."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert not problems, problems
