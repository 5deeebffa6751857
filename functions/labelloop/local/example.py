"""The README's main job, once the local stack is up: the example function from the files in
scripts/data, created through the public API (once: a restart finds it), trained, invoked."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from labelloop import cli_client as commands
from labelloop.client import Client

EXAMPLES = Path(__file__).resolve().parents[3] / "scripts" / "data"
NAME = "support-inbox (example)"


def run_example(url: str, client_id: str, client_secret: str,
                examples: Path = EXAMPLES) -> str:
    client = Client(url, client_id, client_secret)
    fn = next((f for f in client.list_functions() if f["name"] == NAME), None)
    if fn is None:
        fn = client.create_function(NAME)
        for name, description in commands.read_labels(examples / "example_labels.csv"):
            client.create_label(fn["id"], name, description)
        print(f"\ncreated {fn['id']} ({NAME}); importing samples …", flush=True)
        commands.import_samples(Namespace(file=examples / "example_samples.csv",
                                          function_id=fn["id"]), client)
    else:
        print(f"\nfound {fn['id']} ({NAME}) from an earlier run", flush=True)
    commands.train(Namespace(function_id=fn["id"], force=False, wait=True, timeout=300), client)
    print("\npredictions:", flush=True)
    commands.invoke(Namespace(function_id=fn["id"], text=None, json=False,
                              file=examples / "example_queries.txt"), client)
    return fn["id"]
