"""`labelloop clients create`: client credentials for a deployed stack or a local one.

Uses your AWS credentials (the ones that deployed the stack; `AWS_PROFILE`, `AWS_REGION`,
`AWS_ENDPOINT_URL` for an emulator) to read the stack's outputs and store a new client in its
table, the secret only as a hash. Prints the client id, the secret (shown once) and the API URL
as JSON; `--save DIR` also writes DIR/credentials.json (mode 0600), which the other commands
read with `LABELLOOP_DATA_DIR=DIR`.

With `--local [--data-dir DIR]` the client goes to a local stack's data directory (default
./.labelloop): into its clients file (mode 0600, the secret only as a hash), which the stack
registers at every start, and, if a stack is serving that directory now, into it at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from labelloop.cli.connection import CREDENTIALS_FILE, DATA_DIR, DEFAULT_URL

STACK_NAME = "Labelloop-dev"


def _new_credentials(client_id: str | None) -> dict[str, str]:
    from labelloop.auth import new_credentials

    new_id, secret = new_credentials()
    return {"client_id": client_id or new_id, "client_secret": secret}


def create_local_client(data_dir: Path = DATA_DIR, *, client_id: str | None = None,
                        save: Path | None = None) -> None:
    import time

    from labelloop.auth import hash_secret
    from labelloop.local import datadir

    creds = _new_credentials(client_id)
    entry = datadir.ClientEntry(client_id=creds["client_id"],
                                secret_hash=hash_secret(creds["client_secret"]),
                                created_at=time.time())
    datadir.prepare(data_dir)
    datadir.add_client(data_dir, entry)
    running = datadir.running(data_dir)
    if running is not None:
        from labelloop.container import Deps
        from labelloop.local.stack import put_client_entry
        from labelloop.settings import Settings

        os.environ.update(running.env)
        put_client_entry(Deps(settings_cls=Settings), entry)  # only the main table
    _save(save, creds)
    print(json.dumps({**creds, "url": running.url if running else DEFAULT_URL}))


def create_client(*, stack_name: str = STACK_NAME, client_id: str | None = None,
                  save: Path | None = None) -> None:
    import boto3

    from labelloop.auth import register_client
    from labelloop.container import Deps
    from labelloop.resources import stack_outputs
    from labelloop.settings import Settings

    try:
        outputs = stack_outputs(boto3.Session(), stack_name)
    except LookupError as err:
        sys.exit(f"error: {err}")
    # Registering a client writes only the main table.
    settings = Settings(table=outputs["TableName"], invokes_table=outputs["InvokesTableName"],
                        bucket=outputs["BucketName"])
    creds = _new_credentials(client_id)
    register_client(creds["client_id"], creds["client_secret"], Deps(settings))
    _save(save, creds)
    print(json.dumps({**creds, "url": outputs["ApiUrl"]}))


def _save(folder: Path | None, creds: dict) -> None:
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CREDENTIALS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f, indent=2)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clients", help="client credentials for a deployed or local stack",
                              description=__doc__)
    sub = p.add_subparsers(dest="clients_command", required=True)
    c = sub.add_parser("create", help="register a new client; prints its id and secret",
                       description=__doc__)
    c.add_argument("--stack-name", default=STACK_NAME,
                   help="the deployed stack (default Labelloop-dev)")
    c.add_argument("--local", action="store_true",
                   help="for the local stack of --data-dir instead of a deployed stack")
    c.add_argument("--data-dir", type=Path, default=DATA_DIR,
                   help="with --local: the local stack's data directory (default ./.labelloop)")
    c.add_argument("--client-id", help="default: a random client-… id")
    c.add_argument("--save", type=Path, metavar="DIR",
                   help="also write DIR/credentials.json (mode 0600)")
    c.set_defaults(func=_create)


def _create(args: argparse.Namespace) -> None:
    if args.local:
        create_local_client(args.data_dir, client_id=args.client_id, save=args.save)
    else:
        create_client(stack_name=args.stack_name, client_id=args.client_id, save=args.save)
