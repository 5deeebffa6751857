"""What a local stack keeps in its data directory besides moto's state, readable only by its
owner (directory 0700, files 0600): the token signing key, the access key id its local AWS
endpoint accepts, clients added from the command line, and, while a stack runs, where it runs.

The signing key is a file, not a local Secrets Manager secret: moto's endpoint answers any local
process without credentials, and whoever reads the key can sign tokens for every client.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from pydantic import BaseModel

SIGNING_KEY_FILE = "signing.key"
AWS_KEY_FILE = "aws-access-key"
CLIENTS_FILE = "clients.json"
RUNNING_FILE = "running.json"


class ClientEntry(BaseModel):
    """A client added with `labelloop clients create --local`: its secret only as a hash."""

    client_id: str
    secret_hash: str
    created_at: float


class Running(BaseModel):
    """Where the stack serving this data directory is (removed when it stops)."""

    pid: int
    url: str
    env: dict[str, str]  # the handlers' environment: AWS endpoint, table names, …


def prepare(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def write_private(path: Path, text: str) -> None:
    """Create or replace `path` with mode 0600 from the start (never briefly readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def aws_access_key(data_dir: Path) -> str:
    """The access key id the local AWS endpoint accepts, made once (AWS's own format)."""
    path = data_dir / AWS_KEY_FILE
    if not path.exists():
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        write_private(path, "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)))
    return path.read_text().strip()


def signing_key_file(data_dir: Path, secretsmanager, secret_name: str) -> Path:
    """The key file, made once. A data directory from before kept the key in the local Secrets
    Manager: that key moves to the file (tokens issued with it stay valid) and leaves moto."""
    path = data_dir / SIGNING_KEY_FILE
    try:
        old = secretsmanager.get_secret_value(SecretId=secret_name)["SecretString"]
    except secretsmanager.exceptions.ResourceNotFoundException:
        old = None
    if not path.exists():
        write_private(path, old or secrets.token_urlsafe(48))
    if old is not None:
        secretsmanager.delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)
    return path


def read_clients(data_dir: Path) -> list[ClientEntry]:
    path = data_dir / CLIENTS_FILE
    if not path.exists():
        return []
    return [ClientEntry.model_validate(c) for c in json.loads(path.read_text())]


def add_client(data_dir: Path, entry: ClientEntry) -> None:
    clients = [c for c in read_clients(data_dir) if c.client_id != entry.client_id]
    write_private(data_dir / CLIENTS_FILE,
                  json.dumps([c.model_dump() for c in [*clients, entry]], indent=2))


def mark_running(data_dir: Path, running: Running) -> None:
    write_private(data_dir / RUNNING_FILE, running.model_dump_json(indent=2))


def clear_running(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / RUNNING_FILE).unlink()


def running(data_dir: Path) -> Running | None:
    """The stack serving `data_dir`, if its process is alive (a SIGKILL leaves the file)."""
    try:
        info = Running.model_validate_json((data_dir / RUNNING_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's
    return info
