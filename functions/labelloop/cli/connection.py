"""How the commands that drive a service (the local stack or a deployment) reach it: the
connection options, the credentials they fall back on, and the guard that turns expected
failures into `error: …` and exit status 1."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from labelloop.cli.errors import CliError, fail
from labelloop.client import ApiError, Client, Unreachable

DEFAULT_URL = "http://127.0.0.1:5000"
CREDENTIALS_FILE = "credentials.json"
DATA_DIR = Path(".labelloop")  # the local stack's, where its credentials file is


def connection_options() -> argparse.ArgumentParser:
    """The parent parser of every command that talks to the service."""
    conn = argparse.ArgumentParser(add_help=False)
    g = conn.add_argument_group("connection")
    g.add_argument("--url", help=f"service URL (default: $LABELLOOP_URL or {DEFAULT_URL})")
    g.add_argument("--client-id", metavar="ID", help="default: $LABELLOOP_CLIENT_ID, else "
                   f"<data dir>/{CREDENTIALS_FILE} (data dir: $LABELLOOP_DATA_DIR or ./.labelloop)")
    g.add_argument("--client-secret", metavar="SECRET",
                   help="default: $LABELLOOP_CLIENT_SECRET, else as above")
    return conn


def guarded(command: Callable[[argparse.Namespace, Client], None]
            ) -> Callable[[argparse.Namespace], None]:
    """Connect, run, and turn expected failures into `error: …` and exit status 1."""
    def run(args: argparse.Namespace) -> None:
        try:
            command(args, connect(args.url, args.client_id, args.client_secret))
        except ApiError as err:
            fail(f"{err.status} {err.message}")
        except (Unreachable, CliError) as err:
            fail(str(err))
    return run


def connect(url: str | None = None, client_id: str | None = None,
            client_secret: str | None = None) -> Client:
    # Resolved at run time, not as parser defaults, so the environment of the call counts.
    url = url or os.environ.get("LABELLOOP_URL") or DEFAULT_URL
    cid = client_id or os.environ.get("LABELLOOP_CLIENT_ID")
    secret = client_secret or os.environ.get("LABELLOOP_CLIENT_SECRET")
    if not (cid and secret):
        path = Path(os.environ.get("LABELLOOP_DATA_DIR") or DATA_DIR) / CREDENTIALS_FILE
        saved = _read_credentials(path)
        cid, secret = cid or saved.get("client_id"), secret or saved.get("client_secret")
        if not (cid and secret):
            raise CliError("no client credentials: pass --client-id and --client-secret, set "
                           f"LABELLOOP_CLIENT_ID and LABELLOOP_CLIENT_SECRET, or start the "
                           f"local stack, which writes {path}")
    return Client(url, cid, secret)


def _read_credentials(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise CliError(f"{path}: unreadable ({err})") from None
    return saved if isinstance(saved, dict) else {}
