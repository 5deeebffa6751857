"""The whole app on one machine: moto, the API behind a local gateway, and the queue workers."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel

from labelloop import afterwork
from labelloop.auth import new_credentials
from labelloop.local import REGION, datadir, inprogress, wait_for_signal
from labelloop.resources import RESOURCES

(API_HANDLER,) = (f.handler for f in RESOURCES.functions if f.name == "api")
# Queue (by the env var that carries its URL) -> the handler its event source mapping invokes.
# As the CDK stack's event source mappings: from the same description (resources.py).
QUEUE_HANDLERS: dict[str, str] = {
    q.env: f.handler for f in RESOURCES.functions for q in RESOURCES.queues if f.queue == q.name}
CREDENTIALS_FILE = "credentials.json"


class Credentials(BaseModel):
    client_id: str
    client_secret: str


def resolve(dotted: str) -> Callable:
    """`package.module.attribute` -> the attribute, importing the module."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def load_credentials(data_dir: Path) -> Credentials:
    """From LABELLOOP_CLIENT_ID/SECRET if set, else made once and kept in the data dir."""
    client_id = os.environ.get("LABELLOOP_CLIENT_ID")
    client_secret = os.environ.get("LABELLOOP_CLIENT_SECRET")
    if client_id or client_secret:
        if not (client_id and client_secret):
            raise ValueError("set both LABELLOOP_CLIENT_ID and LABELLOOP_CLIENT_SECRET, or neither")
        return Credentials(client_id=client_id, client_secret=client_secret)
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        return Credentials.model_validate_json(path.read_text())
    client_id, client_secret = new_credentials()
    creds = Credentials(client_id=client_id, client_secret=client_secret)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(creds.model_dump_json(indent=2))
    return creds


class LocalStack:
    """Start, use (`url`, `client_id`, `client_secret`), stop; or `run_forever()`.

    The stack sets its environment in `os.environ` (the API handler runs in this process, the
    queue workers in a child started with it: `workers.py`) and puts back what was there on
    stop.
    """

    def __init__(self, data_dir: Path, port: int = 5000, stage: str = "local", *,
                 api_handler: str = API_HANDLER, queue_handlers: Mapping[str, str] | None = None,
                 retry_seconds: int = 2, persist: bool = True,
                 allow_loopback_image_urls: bool = False):
        self.data_dir = Path(data_dir).resolve()
        self.allow_loopback_image_urls = allow_loopback_image_urls
        self.persist = persist
        self.port = port
        self.stage = stage
        self._api_handler = api_handler
        self._queue_handlers = dict(QUEUE_HANDLERS if queue_handlers is None else queue_handlers)
        self._retry_seconds = retry_seconds
        self.env: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}
        self._credentials: Credentials | None = None
        self.moto = None
        self.gateway = None
        self.workers = None
        self._runner_installed = False
        self._previous_runner: afterwork.Runner | None = None

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    @property
    def client_secret(self) -> str:
        return self._credentials.client_secret

    def _set_env(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self.env.update(values)

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import boto3

        from labelloop.local.aws import MotoServer
        from labelloop.local.gateway import THROTTLE_BURST, THROTTLE_RATE, Gateway, Throttle
        from labelloop.local.workers import Worker, Workers
        from labelloop.resources import RESOURCES, create_all

        datadir.prepare(self.data_dir)
        # Only holders of this key (in the 0600 data directory) get past the local AWS endpoint.
        access_key = datadir.aws_access_key(self.data_dir)
        self.moto = MotoServer(self.data_dir if self.persist else None,
                               access_key=access_key).start()
        self._set_env({
            "AWS_ENDPOINT_URL": self.moto.endpoint, "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION,
            # No CloudWatch here to read embedded metrics: they would only be noise.
            "POWERTOOLS_METRICS_DISABLED": "1"})
        session = boto3.Session()
        env = create_all(session, self.stage, with_secrets=False)
        secret_name = env.pop("LABELLOOP_SIGNING_SECRET")
        key_file = datadir.signing_key_file(self.data_dir, session.client("secretsmanager"),
                                            secret_name)
        self._set_env({**env, "LABELLOOP_SIGNING_KEY_FILE": str(key_file)})
        if self.allow_loopback_image_urls:
            self._set_env({"LABELLOOP_IMAGE_URLS_ALLOW_LOOPBACK": "1"})
        # The app's modules are imported only now: they may read their settings at import time.
        from labelloop import container
        from labelloop.auth import register_client

        container.reset()  # the next request builds its clients against this stack

        self._credentials = load_credentials(self.data_dir)
        register_client(self._credentials.client_id, self._credentials.client_secret)
        for entry in datadir.read_clients(self.data_dir):  # `labelloop clients create --local`
            put_client_entry(container.deps(), entry)
        # Nothing runs yet: "in progress" idempotency records are from a killed process.
        inprogress.release(session.resource("dynamodb").Table(
            os.environ["LABELLOOP_IDEMPOTENCY_TABLE"]))
        runner = afterwork.Runner()
        self._previous_runner = afterwork.install(runner)
        self._runner_installed = True
        self.gateway = Gateway(resolve(self._api_handler), self.port,
                               function_name=f"labelloop-{self.stage}-api", runner=runner,
                               throttle=Throttle(THROTTLE_RATE, THROTTLE_BURST)).start()
        specs = {q.env: q for q in RESOURCES.queues}
        self.workers = Workers([Worker(
            queue_url=os.environ[env_var], handler=handler, batch_size=specs[env_var].batch_size,
            retry_seconds=self._retry_seconds,
            function_name=f"labelloop-{self.stage}-{specs[env_var].name}")
            for env_var, handler in self._queue_handlers.items()]).start()
        datadir.mark_running(self.data_dir, datadir.Running(pid=os.getpid(), url=self.url,
                                                            env=self.env))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the work deferred past responses has run, every queue is drained and
        no worker runs."""
        runner = self.gateway.runner if self.gateway is not None else None
        return ((runner is None or runner.wait_idle(timeout))
                and (self.workers is None or self.workers.wait_idle(timeout)))

    def stop(self) -> None:
        """Intake first (the gateway, then the workers, which hand their batches back), then
        what the API's container holds, then the final snapshot (milliseconds), then the
        slower shutdowns."""
        if self.gateway is not None:
            self.gateway.close()
            datadir.clear_running(self.data_dir)
        if self.workers is not None:
            self.workers.stop()  # they release their batches through moto: before it stops
        if self.gateway is not None and self.gateway.runner is not None:
            # What invokes left held for later (labelloop/held_invokes.py), once the work
            # of those still answering has run: through moto, before it stops.
            self.gateway.runner.wait_idle(10)
            afterwork.shutdown()
        if self.moto is not None:
            self.moto.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.moto, self.gateway, self.workers = None, None, None
        if self._runner_installed:
            afterwork.install(self._previous_runner)
            self._runner_installed = False
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        from labelloop import container

        container.reset()

    def run_forever(self, on_ready: Callable[[LocalStack], object] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then stop; the data is on disk when this returns.
        `on_ready` runs once the stack serves (the README's example)."""
        self.start()
        try:
            print(f"labelloop local stack ({self.stage})\n"
                  f"  API            {self.url}\n"
                  f"  console        {self.url}/console/\n"
                  f"  client id      {self.client_id}\n"
                  f"  client secret  {self.client_secret}\n"
                  f"  data           {self.data_dir}"
                  f"{'' if self.persist else ' (credentials only: AWS state in memory)'}\n"
                  f"  AWS (moto)     {self.moto.endpoint} (access key id in "
                  f"{self.data_dir / datadir.AWS_KEY_FILE})\n"
                  "Ctrl-C to stop.", flush=True)
            if on_ready is not None:
                on_ready(self)
                print(f"\nserving on {self.url} (console {self.url}/console/, client id "
                      f"{self.client_id}); Ctrl-C to stop.", flush=True)
            wait_for_signal()
            print("stopping: saving state", flush=True)
        finally:
            self.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()



def put_client_entry(d, entry: datadir.ClientEntry) -> None:
    """A client from the data directory's clients file into the stack's table, hash as is."""
    from labelloop.domain import ClientItem

    d.clients.put(ClientItem(id=entry.client_id, secret_hash=entry.secret_hash,
                             created_at=entry.created_at))
