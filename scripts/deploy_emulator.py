"""Deploy the stack into ministack with the unmodified CDK CLI and check it end to end.

Run by scripts/deploy_emulator.sh (which installs ministack and builds the layers for its
interpreter first); ./.venv's Python. Steps, each timed:

  1. start ministack on 127.0.0.1:5000 (fails if the port is taken), minimal environment
     (handlers inherit the emulator's environment), its temporary files in a folder of this run
  2. `scripts/cdk.sh bootstrap` and `scripts/cdk.sh deploy` (stage `emulator`, settings
     {"lambda_python": <ministack's Python>, "fargate_training": false,
     "error_rate_alarm_percent": null}), outputs to a file
  3. `labelloop clients create --stack-name Labelloop-emulator`: the first client credentials;
     the web console's page and every file it links, through the deployed routes
  4. the official `nyckel` SDK, unchanged, against the deployed HTTP API (`ApiUrl`): create a
     text function, its labels and samples (scripts/data/example_*.csv), wait until trained,
     invoke, check the labels; list the samples (the SDK's paging)
  5. a batch through the API (`POST .../batch-invokes` -> batch queue -> batch worker), its
     JSON-lines results read from the bucket; a raw message sent to the queue (BatchQueueUrl)
     the same way
  6. a function on the accurate encoder (its model fetched from the stack's S3 asset), and an
     image function through the SDK's image client: 6 photos, trained, two held-out photos
     invoked, a sample's picture fetched without a token from the presigned URL the API gives
     for it, and the two as a batch (one by s3:// key under the function's inputs/, one as a
     data URI)
  7. the dead-letter queues are empty; delete the function

The emulator is stopped (its whole process group) in all cases. Exit status 0 only if every
check passed. ministack's log: .cache/emulator/ministack.log.

Reaching the API: ministack serves it at http://<apiId>.execute-api.localhost:5000 (the stack's
ApiUrl). These machines do not resolve `*.localhost` (no nss-myhostname) and an /etc/hosts entry
needs root, so this process resolves `*.localhost` to 127.0.0.1 itself (RFC 6761 §6.3), which
works for any user; the SDK gets ApiUrl unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scripts" / "data"
WORK = ROOT / ".cache" / "emulator"
HOST, PORT = "127.0.0.1", 5000
ENDPOINT = f"http://{HOST}:{PORT}"
REGION = "us-east-1"
STAGE = "emulator"
STACK = f"Labelloop-{STAGE}"
# Clear cases from scripts/data/example_queries.txt and the label each must get.
EXPECTED = {
    "You billed my card two times for the same order": "billing",
    "The save button is greyed out and nothing happens": "bug_report",
    "Can you add a calendar view to the planner?": "feature_request",
    "I forgot my password and the reset email never came": "account_access",
}
TRAIN_TIMEOUT = 300
BATCH_TIMEOUT = 240
INVOKE_SETTLE = 30


class Failed(Exception):
    pass


def say(msg: str) -> None:
    print(f"== deploy-emulator: {msg}", flush=True)


class Steps:
    def __init__(self) -> None:
        self.times: list[tuple[str, float, str]] = []

    @contextlib.contextmanager
    def step(self, name: str):
        say(f"{name} …")
        t = time.monotonic()
        status = "FAILED"
        try:
            yield
            status = "ok"
        finally:
            dt = time.monotonic() - t
            self.times.append((name, dt, status))
            say(f"{name}: {status} in {dt:.1f} s")

    def table(self) -> str:
        lines = [f"  {name:<58} {dt:7.1f} s  {status}" for name, dt, status in self.times]
        total = sum(dt for _, dt, _ in self.times)
        return "\n".join([*lines, f"  {'total':<58} {total:7.1f} s"])


# -- environment -----------------------------------------------------------------------------

def aws_env() -> None:
    """This process and its children talk to the emulator only, with dummy credentials."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "CDK_DEFAULT_ACCOUNT",
                "CDK_DEFAULT_REGION"):
        os.environ.pop(var, None)
    os.environ.update({
        "AWS_ENDPOINT_URL": ENDPOINT, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(WORK / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(WORK / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "localhost,127.0.0.1,.localhost", "no_proxy": "localhost,127.0.0.1,.localhost",
        "TQDM_DISABLE": "1",  # the SDK's progress bars
    })


def resolve_localhost_names() -> None:
    """`*.localhost` -> 127.0.0.1 in this process (the API's host name on the emulator)."""
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").endswith(".localhost"):
            host = HOST
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def scratch_dir() -> str | None:
    """Where the emulator's handlers unpack (≈ 3 GB for a run): tmpfs when it has room (cold
    starts and the clean-up are then several times faster), else the default temp dir."""
    if env := os.environ.get("LABELLOOP_EMULATOR_TMPDIR"):
        return env
    with contextlib.suppress(OSError):
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 8 << 30 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    return None


# -- ministack -------------------------------------------------------------------------------

class Ministack:
    def __init__(self, binary: str) -> None:
        self.binary = str(Path(binary).resolve())
        self.proc: subprocess.Popen | None = None
        self.log_path = WORK / "ministack.log"
        # Every cold start unpacks the function's layers (≈ 215 MB) into here.
        self.tmp = Path(tempfile.mkdtemp(prefix="ministack-run-", dir=scratch_dir()))

    def start(self) -> None:
        with socket.socket() as s:
            # As a server binds (TIME_WAIT leftovers do not count, a listener does).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, PORT))
            except OSError as err:
                raise Failed(f"port {PORT} on {HOST} is taken ({err.strerror}): ministack needs "
                             "it (the nyckel SDK only pages through URLs with ':5000'); stop "
                             "what listens there (e.g. `labelloop local`) and retry") from err
        # Handlers run as subprocesses with ministack's environment: keep it minimal.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.tmp),
               "LANG": "C.UTF-8", "TMPDIR": str(self.tmp), "BIND_HOST": HOST,
               "GATEWAY_PORT": str(PORT), "MINISTACK_REGION": REGION}
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([self.binary], cwd=self.tmp, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"ministack exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{ENDPOINT}/_ministack/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failed(f"ministack did not become healthy in 60 s:\n{self.tail()}")
            time.sleep(0.25)

    def tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def handler_errors(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines()
                if '"level":"ERROR"' in line or line.startswith("Traceback")]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The handlers' worker processes are in ministack's process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:  # nothing to save: a short grace, then the whole group goes
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- steps -----------------------------------------------------------------------------------

def run(cmd: list[str], log: Path, what: str) -> str:
    """Run a command, its output to `log`; on failure show the end of it."""
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    out = log.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-80:])
        raise Failed(f"{what} exited with {proc.returncode} (full log: {log}):\n{tail}")
    return out


def deploy(lambda_python: str) -> dict[str, str]:
    import boto3

    account = boto3.client("sts").get_caller_identity()["Account"]
    cdk = [str(ROOT / "scripts" / "cdk.sh")]
    # ministack's CloudFormation refuses metric-math alarms: the error-rate alarm is left out
    # here (tests/test_infra.py checks it in the synthesized template).
    settings = json.dumps({"lambda_python": lambda_python, "fargate_training": False,
                           "error_rate_alarm_percent": None})
    # Bootstrap synthesizes the app too: with the same context, so that it looks for the
    # layers this deploy built (a fresh clone has no others).
    run([*cdk, "bootstrap", f"aws://{account}/{REGION}", "-c", f"stage={STAGE}",
         "-c", f"settings={settings}", "--output", str(WORK / "cdk.out")],
        WORK / "cdk-bootstrap.log", "cdk bootstrap")
    say("bootstrapped; deploying")
    outputs_file = WORK / "outputs.json"
    outputs_file.unlink(missing_ok=True)
    run([*cdk, "deploy", STACK, "--require-approval", "never", "-c", f"stage={STAGE}",
         "-c", f"settings={settings}", "--outputs-file", str(outputs_file),
         "--output", str(WORK / "cdk.out"), "--progress", "events"],
        WORK / "cdk-deploy.log", "cdk deploy")
    prune_assets(WORK / "cdk.out")
    outputs = json.loads(outputs_file.read_text())[STACK]
    missing = {"ApiUrl", "TableName", "InvokesTableName", "BucketName", "TrainingQueueUrl",
               "BatchQueueUrl", "SigningSecretName"} - outputs.keys()
    if missing:
        raise Failed(f"stack outputs missing: {sorted(missing)}")
    for key, value in sorted(outputs.items()):
        print(f"   {key} = {value}")
    return outputs


def prune_assets(out: Path) -> None:
    """Drop staged assets this deploy did not use (the CLI keeps them forever; layers are
    hundreds of MB)."""
    manifest = json.loads((out / f"{STACK}.assets.json").read_text())
    used = {a["source"].get("path") for a in manifest.get("files", {}).values()}
    for d in out.glob("asset.*"):
        if d.name in used:
            continue
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
        else:
            d.unlink(missing_ok=True)


def create_client() -> dict:
    out = run([str(ROOT / ".venv" / "bin" / "labelloop"), "clients", "create", "--stack-name",
               STACK], WORK / "clients-create.log", "labelloop clients create")
    creds = json.loads(out.strip().splitlines()[-1])
    print(f"   client {creds['client_id']} for {creds['url']}")
    return creds


def read_csv(name: str) -> list[dict]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


def sdk_function(creds: dict, steps: Steps):
    import nyckel

    sdk_creds = nyckel.Credentials(creds["client_id"], creds["client_secret"],
                                   server_url=creds["url"])
    with steps.step("SDK: create the function and its labels"):
        func = nyckel.TextClassificationFunction.create(f"emulator-check-{int(time.time())}",
                                                        sdk_creds)
        func.create_labels([nyckel.ClassificationLabel(name=r["name"],
                                                       description=r["description"])
                            for r in read_csv("example_labels.csv")])
        print(f"   function {func.function_id}")
    with steps.step("SDK: create 30 samples"):
        rows = read_csv("example_samples.csv")
        ids = func.create_samples([(r["text"], r["label"]) for r in rows])
        if len(set(ids)) != len(rows):
            raise Failed(f"create_samples returned {len(set(ids))} distinct ids for {len(rows)}")
    with steps.step("SDK: wait until trained"):
        wait_trained(func, "the function")
    with steps.step("SDK: invoke over the deployed HTTP API"):
        # Warm API containers re-read the `live` pointer every 2 s, so right after "trained"
        # one may still answer with the previous model: retry for a while before failing.
        texts = list(EXPECTED)
        deadline = time.monotonic() + INVOKE_SETTLE
        while True:
            predictions = func.invoke(texts)
            wrong = [f"{text!r}: {p.label_name} ({p.confidence}), expected {EXPECTED[text]}"
                     for text, p in zip(texts, predictions, strict=True)
                     if p.label_name != EXPECTED[text] or not 0 < p.confidence <= 1]
            if not wrong or time.monotonic() > deadline:
                break
            print(f"   not yet: {'; '.join(wrong)}")
            time.sleep(2)
        for text, p in zip(texts, predictions, strict=True):
            print(f"   {p.label_name:<16} {p.confidence:.3f}  {text}")
        if wrong:
            raise Failed("wrong predictions:\n  " + "\n  ".join(wrong))
    with steps.step("SDK: list samples (paging)"):
        annotated = [s for s in func.list_samples() if s.annotation]
        if len(annotated) != len(rows):
            raise Failed(f"list_samples: {len(annotated)} annotated samples, expected {len(rows)}")
    return func


def wait_trained(func, what: str) -> None:
    """Until the SDK says the function has a trained model (TRAIN_TIMEOUT at most)."""
    deadline = time.monotonic() + TRAIN_TIMEOUT
    while not func.has_trained_model():
        if time.monotonic() > deadline:
            raise Failed(f"{what} did not train within {TRAIN_TIMEOUT} s")
        time.sleep(1)


def image_function(creds: dict, outputs: dict, steps: Steps) -> None:
    """An image function through the SDK's own image client: Pillow from the runtime layer, the
    image encoder from the encoder layer, the pictures in the stack's bucket; then a batch of
    its pictures by s3:// key and data URI through the batch worker."""
    import base64
    import io

    import boto3
    import nyckel
    import requests
    from PIL import Image

    import build_image_encoder
    from build_encoder import download

    photos = build_image_encoder.sample_photos(ROOT / ".cache" / "photos", download)
    views = {label: build_image_encoder.views(Image.open(photos[name]).convert("RGB"), 4)
             for label, name in (("cat", "chelsea.png"), ("cup", "coffee.png"))}
    sdk_creds = nyckel.Credentials(creds["client_id"], creds["client_secret"],
                                   server_url=creds["url"])
    with steps.step("SDK image function: create, 6 photos"):
        func = nyckel.ImageClassificationFunction.create(f"emulator-images-{int(time.time())}",
                                                         sdk_creds)
        ids = func.create_samples([(img, label) for label, imgs in views.items()
                                   for img in imgs[:3]])
        if len(set(ids)) != 6:
            raise Failed(f"create_samples returned {len(set(ids))} distinct ids for 6 photos")
    with steps.step("SDK image function: trained, invoked, picture served"):
        wait_trained(func, "the image function")
        paths = []
        for label, imgs in views.items():  # the fourth view of each: not a sample
            paths.append(WORK / f"held-out-{label}.jpg")
            imgs[3].save(paths[-1])
        deadline = time.monotonic() + INVOKE_SETTLE
        while True:
            got = [p.label_name for p in func.invoke([str(p) for p in paths])]
            if got == list(views) or time.monotonic() > deadline:
                break
            print(f"   not yet: {got}")
            time.sleep(2)
        print(f"   held-out photos: {got}")
        if got != list(views):
            raise Failed(f"image invokes answered {got}, expected {list(views)}")
        sample = func.read_sample(ids[0])
        # The stack links pictures by presigned URLs into its bucket: fetched as any client
        # would, without the API's token.
        url = urllib.parse.urlsplit(sample.data)
        fid = func.function_id.removeprefix("function_")
        if not (re.search(rf"/functions/{fid}/images/[0-9a-f]{{64}}$", url.path)
                and "X-Amz-Signature=" in url.query):
            raise Failed(f"sample {ids[0]}'s data is {sample.data}, not a presigned link to "
                         "its picture")
        with urllib.request.urlopen(sample.data, timeout=30) as response:
            kind, size = response.headers["Content-Type"], Image.open(
                io.BytesIO(response.read())).size
        if (kind, size) != ("image/jpeg", views["cat"][0].size):
            raise Failed(f"sample {ids[0]}'s picture came back as {kind} {size}")
        print(f"   {sample.data} -> {kind} {size[0]}x{size[1]}")
    with steps.step("SDK image function: batch by s3:// key and data URI"):
        bucket, fid = outputs["BucketName"], func.function_id
        key = f"inputs/{fid}/held-out-cat.jpg"
        boto3.client("s3").upload_file(str(paths[0]), bucket, key)
        items = [{"id": "cat", "data": f"s3://{bucket}/{key}"},
                 {"id": "cup", "data": "data:image/jpeg;base64," +
                  base64.b64encode(paths[1].read_bytes()).decode()}]
        job, jobs, headers = run_batch(creds, fid, items)
        results = requests.get(f"{jobs}/{job['id']}/results", headers=headers,
                               timeout=30).json()["results"]
        got = {line["id"]: line.get("labelName", line.get("error")) for line in results}
        if got != {"cat": "cat", "cup": "cup"}:
            raise Failed(f"image batch answered {got}")
        print(f"   {got}")
        func.delete()


def token(creds: dict) -> str:
    form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                   "client_id": creds["client_id"],
                                   "client_secret": creds["client_secret"]}).encode()
    with urllib.request.urlopen(creds["url"] + "/connect/token", form, timeout=30) as r:
        return json.load(r)["access_token"]


def handler_log_lines(function: str, needle: str) -> list[str]:
    """Lines of a function's CloudWatch Logs (where the emulator writes handler output)."""
    import boto3

    logs, found, kwargs = boto3.client("logs"), [], {}
    while True:
        page = logs.filter_log_events(logGroupName=f"/aws/lambda/labelloop-{STAGE}-{function}",
                                      **kwargs)
        found += [e["message"] for e in page.get("events", []) if needle in e["message"]]
        if not page.get("nextToken") or page["nextToken"] == kwargs.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]


def accurate_function(creds: dict, steps: Steps) -> None:
    """A function on the accurate encoder: its model.onnx is the stack's S3 asset, fetched by
    the API container on first use (the layer holds only its manifest and tokenizer)."""
    from labelloop.client import Client

    client = Client(creds["url"], creds["client_id"], creds["client_secret"], timeout=120)
    with steps.step("accurate encoder: create, label, 30 samples"):
        fn = client.create_function(f"emulator-accurate-{int(time.time())}", encoder="accurate")
        if fn.get("encoder") != "accurate":
            raise Failed(f"created {fn}, not an accurate function")
        for r in read_csv("example_labels.csv"):
            client.create_label(fn["id"], r["name"], r["description"])
        samples = read_csv("example_samples.csv")
        for r in samples:
            client.create_sample(fn["id"], r["text"], r["label"])
    with steps.step("accurate encoder: trained, invoked over HTTP"):
        # The first run may start while samples are still arriving (CI once trained v1 on
        # part of them), so wait for a live version trained on every sample.
        deadline = time.monotonic() + TRAIN_TIMEOUT
        while True:
            models = client.list_models(fn["id"])
            if any(m["live"] and m.get("sampleCount") == len(samples) for m in models):
                break
            if time.monotonic() > deadline:
                raise Failed(f"no live version trained on all {len(samples)} samples within "
                             f"{TRAIN_TIMEOUT} s: {models}")
            time.sleep(1)
        deadline = time.monotonic() + INVOKE_SETTLE
        while True:
            outs = {text: client.invoke(fn["id"], text) for text in EXPECTED}
            wrong = [f"{text!r}: {out['labelName']}, expected {EXPECTED[text]}"
                     for text, out in outs.items() if out["labelName"] != EXPECTED[text]]
            if not wrong or time.monotonic() > deadline:
                break
            print(f"   not yet: {'; '.join(wrong)}")
            time.sleep(2)
        for text, out in outs.items():
            print(f"   {out['labelName']:<16} {out['confidence']:.3f}  {text}")
        client.delete_function(fn["id"])
        if wrong:
            raise Failed("wrong predictions:\n  " + "\n  ".join(wrong))
        fetched = handler_log_lines("api", "fetched the accurate encoder's model")
        if not fetched:
            raise Failed("no container fetched the accurate model from the stack's S3 asset")
        print(f"   {len(fetched)} container(s) fetched the model; first: {fetched[0][:300]}")


def read_jsonl(s3, bucket: str, prefix: str, parts: int, timeout: float) -> list[dict]:
    """The JSON-lines result objects of a batch job under `prefix`, once all `parts` exist."""
    deadline = time.monotonic() + timeout
    while True:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
                      .get("Contents", []) if o["Key"].endswith(".jsonl"))
        if len(keys) >= parts:
            break
        if time.monotonic() > deadline:
            raise Failed(f"no results under s3://{bucket}/{prefix} after {timeout:.0f} s")
        time.sleep(1)
    lines = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line.strip()]
    return lines


def check_lines(lines: list[dict], items: list[dict], expected: dict[str, str]) -> None:
    by_id = {line.get("id"): line for line in lines}
    problems = []
    for item in items:
        line = by_id.get(item["id"])
        if line is None:
            problems.append(f"{item['id']}: no result line")
        elif line.get("labelName") != expected[item["data"]]:
            problems.append(f"{item['id']}: {line}")
    if len(lines) != len(items):
        problems.append(f"{len(lines)} lines for {len(items)} items")
    if problems:
        raise Failed("batch results:\n  " + "\n  ".join(problems))


def console(url: str) -> None:
    """The page and every file it links, through the deployed routes (public, no token)."""
    import re

    import requests

    page = requests.get(f"{url}/console", timeout=30)
    if page.status_code != 200 or "text/html" not in page.headers.get("Content-Type", ""):
        raise Failed(f"GET /console: {page.status_code} {page.headers.get('Content-Type')}")
    linked = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
    if not linked:
        raise Failed("the console page links no files")
    for path in linked:
        r = requests.get(f"{url}{path}", timeout=30)
        if r.status_code != 200 or not r.content:
            raise Failed(f"GET {path}: {r.status_code}")
    print(f"   /console and {len(linked)} linked files")


def batches(creds: dict, outputs: dict, function_id: str, steps: Steps) -> None:
    import boto3

    s3 = boto3.client("s3")
    bucket = outputs["BucketName"]
    items = [{"id": f"item-{i}", "data": text} for i, text in enumerate(list(EXPECTED) * 3)]

    with steps.step("batch via the API -> batch queue -> worker; JSONL in S3"):
        job, _, _ = run_batch(creds, function_id, items)
        if job["state"] != "Succeeded" or job["processed"] != len(items):
            raise Failed(f"batch job: {job}")
        prefix = job["resultsPrefix"].removeprefix(f"s3://{bucket}/")
        if not prefix.startswith("batches/"):
            raise Failed(f"unexpected resultsPrefix {job['resultsPrefix']}")
        check_lines(read_jsonl(s3, bucket, prefix, job["parts"], 30), items, EXPECTED)
        print(f"   {len(items)} result lines under s3://{bucket}/{prefix}")

    with steps.step("batch via a raw message to the queue; JSONL in S3"):
        job_id = f"emulator-raw-{int(time.time())}"
        boto3.client("sqs").send_message(QueueUrl=outputs["BatchQueueUrl"], MessageBody=json.dumps(
            {"functionId": function_id, "jobId": job_id, "part": 0, "items": items}))
        prefix = f"batches/{function_id.removeprefix('function_')}/{job_id}/"
        check_lines(read_jsonl(s3, bucket, prefix, 1, BATCH_TIMEOUT), items, EXPECTED)
        print(f"   {len(items)} result lines under s3://{bucket}/{prefix}")


def run_batch(creds: dict, function_id: str, items: list[dict]) -> tuple[dict, str, dict]:
    """A batch job submitted through the API, once it has ended: (the job, the function's
    batch-invokes URL, the request headers)."""
    import requests

    headers = {"Authorization": f"Bearer {token(creds)}"}
    jobs = f"{creds['url']}/v1/functions/{function_id}/batch-invokes"
    r = requests.post(jobs, json={"items": items}, headers=headers, timeout=30)
    if r.status_code != 200:
        raise Failed(f"POST batch-invokes: {r.status_code} {r.text}")
    return finished(jobs, r.json(), headers), jobs, headers


def finished(jobs: str, job: dict, headers: dict) -> dict:
    """The batch job once it has ended (polled through the API)."""
    import requests

    deadline = time.monotonic() + BATCH_TIMEOUT
    while job["state"] not in ("Succeeded", "Failed"):
        if time.monotonic() > deadline:
            raise Failed(f"batch job still {job['state']} after {BATCH_TIMEOUT} s: {job}")
        time.sleep(1)
        job = requests.get(f"{jobs}/{job['id']}", headers=headers, timeout=30).json()
    print(f"   job {job['id']}: {job['state']}, {job['processed']} processed, "
          f"{job['failed']} failed")
    return job


def dead_letters(outputs: dict) -> None:
    import boto3

    sqs = boto3.client("sqs")
    for key in ("TrainingQueueUrl", "BatchQueueUrl"):
        attrs = sqs.get_queue_attributes(QueueUrl=outputs[key],
                                         AttributeNames=["RedrivePolicy"])["Attributes"]
        dlq_name = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[1]
        dlq = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        if any(int(v) for v in counts.values()):
            raise Failed(f"dead-letter queue {dlq_name} is not empty: {counts}")
        print(f"   {dlq_name}: empty")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ministack", required=True, help="the ministack executable")
    ap.add_argument("--lambda-python", required=True, help="ministack's Python, e.g. 3.11")
    args = ap.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    aws_env()
    resolve_localhost_names()

    def stop_on_signal(signum, _frame):
        raise SystemExit(f"deploy-emulator: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop_on_signal)
    steps = Steps()
    emulator = Ministack(args.ministack)
    ok = False
    try:
        with steps.step("start ministack on :5000"):
            emulator.start()
        with steps.step("cdk bootstrap + cdk deploy"):
            outputs = deploy(args.lambda_python)
        with steps.step("labelloop clients create"):
            creds = create_client()
        with steps.step("the console over the deployed HTTP API"):
            console(creds["url"])
        func = sdk_function(creds, steps)
        batches(creds, outputs, func.function_id, steps)
        accurate_function(creds, steps)
        image_function(creds, outputs, steps)
        with steps.step("dead-letter queues empty; delete the function"):
            dead_letters(outputs)
            func.delete()
        ok = True
    except Failed as err:
        print(f"deploy-emulator: FAILED: {err}", file=sys.stderr, flush=True)
    except Exception as err:
        print(f"deploy-emulator: FAILED: {type(err).__name__}: {err}", file=sys.stderr,
              flush=True)
        import traceback

        traceback.print_exc()
    finally:
        errors = emulator.handler_errors()
        if errors:
            print(f"deploy-emulator: {len(errors)} error lines in the handlers' logs "
                  f"({emulator.log_path}), first ones:", flush=True)
            for line in errors[:5]:
                print(f"   {line[:400]}", flush=True)
        if not ok:
            print(f"--- end of the ministack log ({emulator.log_path}) ---\n{emulator.tail(40)}",
                  flush=True)
        with steps.step("stop ministack"):
            emulator.stop()
        print("deploy-emulator timings:\n" + steps.table(), flush=True)
    passed = sum(status == "ok" for _, _, status in steps.times)
    failed = sum(status != "ok" for _, _, status in steps.times) + (not ok and not any(
        status != "ok" for _, _, status in steps.times))
    say("all checks passed" if ok else "FAILED")
    print(f"deploy-emulator: {passed} passed, {failed} failed", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
