"""`labelloop models | promote | rollback`: a function's model versions and which one is live."""

from __future__ import annotations

import argparse

from labelloop.cli.connection import guarded
from labelloop.cli.output import num, print_table
from labelloop.client import Client


def list_models(client: Client, function_id: str) -> None:
    rows = [[str(m["version"]), "*" if m.get("live") else "", "yes" if m.get("zeroShot") else "",
             str(m.get("sampleCount", "")), _lighter(m), num(m.get("cvAccuracy")),
             num(m.get("cvEce")), "yes" if m.get("promoted") else "no", m.get("decision", "")]
            for m in sorted(client.list_models(function_id), key=lambda m: m["version"])]
    if not rows:
        print("no model versions yet")
        return
    print_table(["version", "live", "zero-shot", "samples", "lighter", "cv acc", "ECE",
                 "promoted", "decision"], rows)


def _lighter(model: dict) -> str:
    """Suspects it trained lighter (reviews found the suspect queue right), if any."""
    n = (model.get("suspects") or {}).get("lighter")
    return str(n) if n else ""


def promote(client: Client, function_id: str, version: int) -> None:
    print(f"live model: v{client.promote(function_id, version)['live']}")


def rollback(client: Client, function_id: str) -> None:
    print(f"rolled back: live model is now v{client.rollback(function_id)['live']}")


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("models", parents=[conn], help="list a function's model versions")
    p.add_argument("function_id")
    p.set_defaults(func=guarded(lambda a, client: list_models(client, a.function_id)))

    p = subparsers.add_parser("promote", parents=[conn], help="make a model version live")
    p.add_argument("function_id")
    p.add_argument("version", type=int, help="a version number, as `models` lists them")
    p.set_defaults(func=guarded(lambda a, client: promote(client, a.function_id, a.version)))

    p = subparsers.add_parser("rollback", parents=[conn],
                              help="go back to the previously live model version")
    p.add_argument("function_id")
    p.set_defaults(func=guarded(lambda a, client: rollback(client, a.function_id)))
