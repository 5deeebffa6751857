"""`labelloop functions create | list | delete`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelloop.cli.connection import guarded
from labelloop.cli.files import read_labels
from labelloop.cli.output import print_table, version
from labelloop.client import Client
from labelloop.encoder import ENCODERS


def create_function(client: Client, name: str, *, labels_file: Path | None = None,
                    encoder: str | None = None, input: str = "Text") -> None:
    # Read the labels before creating anything: a bad file leaves no half-made function.
    labels = read_labels(labels_file) if labels_file else []
    fn = client.create_function(name, input=input, encoder=encoder)
    for label, description in labels:
        client.create_label(fn["id"], label, description)
    print(fn["id"])
    if labels:
        print(f"created {fn['id']} with {len(labels)} labels", file=sys.stderr)


def list_functions(client: Client) -> None:
    rows = [[f["id"], f.get("name", ""), version(f.get("liveModelVersion")),
             f.get("encoder", ""), f.get("createdAt", "")] for f in client.list_functions()]
    print_table(["id", "name", "live", "encoder", "created"], rows)


def delete_function(client: Client, function_id: str) -> None:
    client.delete_function(function_id)
    print(f"deleted {function_id}")


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    fns = subparsers.add_parser("functions", help="create, list or delete functions")
    fsub = fns.add_subparsers(dest="functions_command", required=True)
    p = fsub.add_parser("create", parents=[conn], help="create a function; prints its id")
    p.add_argument("name")
    p.add_argument("--labels", type=Path, metavar="CSV", help="CSV with columns name[,description]")
    p.add_argument("--encoder", choices=ENCODERS, default=None,
                   help="fast (all-MiniLM-L6-v2, the default) or accurate (all-mpnet-base-v2: "
                        "more accurate with few samples, ~10x the encoder time); fixed once "
                        "created; Text functions only")
    p.add_argument("--input", choices=("Text", "Image"), default="Text",
                   help="what the function classifies (default Text); an Image function uses "
                        "the image encoder")
    p.set_defaults(func=guarded(lambda a, client: create_function(
        client, a.name, labels_file=a.labels, encoder=a.encoder, input=a.input)))
    p = fsub.add_parser("list", parents=[conn], help="list your functions")
    p.set_defaults(func=guarded(lambda a, client: list_functions(client)))
    p = fsub.add_parser("delete", parents=[conn], help="delete a function and all its data")
    p.add_argument("function_id")
    p.set_defaults(func=guarded(lambda a, client: delete_function(client, a.function_id)))
