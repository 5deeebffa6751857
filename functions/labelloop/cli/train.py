"""`labelloop train`: queue a training run; with `wait`, report the model it left live."""

from __future__ import annotations

import argparse
import time

from labelloop.cli.connection import guarded
from labelloop.cli.errors import CliError
from labelloop.cli.output import num
from labelloop.client import Client


def train(client: Client, function_id: str, *, force: bool = False, wait: bool = False,
          timeout: float = 600.0) -> None:
    client.train(function_id, force=force)
    if not wait:
        print(f"training queued for {function_id}")
        return
    metrics = _wait_for_training(client, function_id, timeout)
    if metrics.get("lastTrainingError"):
        raise CliError(f"training failed: {metrics['lastTrainingError']}")
    versions = sorted(client.list_models(function_id), key=lambda m: m["version"])
    live = next((m for m in versions if m.get("live")), None)
    if live is None:
        raise CliError("training finished but no model is live (does the function have labels?)")
    quality = ("zero-shot" if live.get("zeroShot") else
               f"cv accuracy {num(live.get('cvAccuracy'))}, "
               f"{live.get('sampleCount', 0)} samples")
    print(f"live model: v{live['version']} ({quality})")
    newest = versions[-1]
    if newest is not live and not newest.get("promoted"):
        print(f"not promoted: v{newest['version']}: {newest.get('decision', '')}")


def _wait_for_training(client: Client, fid: str, timeout: float) -> dict:
    from tqdm import tqdm

    deadline = time.monotonic() + timeout
    # No total to show: the bar is a spinner with elapsed time, on a terminal only.
    with tqdm(desc="training", bar_format="{desc}: {elapsed}", disable=None) as bar:
        while True:
            metrics = client.metrics(fid)
            if not metrics.get("isTraining"):
                return metrics
            if time.monotonic() >= deadline:
                raise CliError(f"still training after {timeout:g} s (it goes on; check with "
                               f"`labelloop models {fid}`)")
            bar.update()
            time.sleep(0.5)


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("train", parents=[conn], help="queue a training run")
    p.add_argument("function_id")
    p.add_argument("--force", action="store_true",
                   help="train even if nothing changed, and promote the result regardless")
    p.add_argument("--wait", action="store_true",
                   help="wait for training to finish, then print the live model")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="with --wait: give up after S seconds (default 600)")
    p.set_defaults(func=guarded(lambda a, client: train(
        client, a.function_id, force=a.force, wait=a.wait, timeout=a.timeout)))
