"""`labelloop capture | accuracy`: the policy that captures invokes for review, and the live
accuracy that annotated random captures measure."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable

from labelloop.cli.connection import guarded
from labelloop.cli.errors import fail
from labelloop.cli.output import num, print_table
from labelloop.client import ApiError, Client

Setting = tuple[str, str, int | float | str]  # strategy, key, value


def capture(client: Client, function_id: str, *, settings: Iterable[Setting] = (),
            near_duplicate_cosine: float | None = None, spread_cosine: float | None = None,
            label_cap: float | None = None, drift_random_factor: float | None = None) -> None:
    """Print the capture policy, after changing the given settings (the others keep their
    values)."""
    strategies: dict[str, dict] = {}
    for strategy, key, value in settings:
        strategies.setdefault(strategy, {})[key] = value
    scalars = {"near_duplicate_cosine": near_duplicate_cosine, "spread_cosine": spread_cosine,
               "label_cap": label_cap, "drift_random_factor": drift_random_factor}
    if strategies or any(v is not None for v in scalars.values()):
        try:
            policy = client.set_capture_policy(function_id, strategies, **scalars)
        except ApiError as err:
            if err.status != 400:
                raise
            fail(f"{err.status} {err.message}", status=2)  # a bad value: a usage error
    else:
        policy = client.capture_policy(function_id)
    print(f"near-duplicate cosine: {policy['nearDuplicateCosine']:g}; spread: similar from "
          f"cosine {policy['spreadCosine']:g}, a label holds at most {policy['labelCap']:g} "
          f"of a strategy's slots; under drift, random samples "
          f"{policy['driftRandomFactor']:g} times as often")
    rows = [[s["name"], f"{s.get('used', 0)}/{s.get('quota', '?')}",
             " ".join(f"{k}={v}" for k, v in s.items() if k not in ("name", "used", "quota"))]
            for s in policy.get("strategies", [])]
    print_table(["strategy", "used/quota", "settings"], rows)


def accuracy(client: Client, function_id: str) -> None:
    rows = [[f"v{r['modelVersion']}", str(r["annotated"]), num(r["accuracy"]),
             "{:.3f}-{:.3f}".format(*r["interval95"])]
            for r in sorted(client.live_accuracy(function_id),
                            key=lambda r: r["modelVersion"])]
    if not rows:
        print("no live accuracy yet: it comes from annotated random captures. Annotate some:\n"
              f"  labelloop review {function_id} --strategy random")
        return
    print_table(["version", "annotated", "accuracy", "95% interval"], rows)


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("accuracy", parents=[conn],
                              help="live accuracy per model version, from random captures")
    p.add_argument("function_id")
    p.set_defaults(func=guarded(lambda a, client: accuracy(client, a.function_id)))

    p = subparsers.add_parser(
        "capture", parents=[conn], help="show or change the capture policy",
        description="Show the capture policy: per strategy, the slots used of its quota and "
                    "its settings. --set changes settings first; the others keep their values.")
    p.add_argument("function_id")
    p.add_argument("--set", type=_setting, action="append", default=[],
                   metavar="STRATEGY.KEY=VALUE",
                   help="e.g. uncertainty.quota=50 or random.rate=0.05 (repeatable)")
    p.add_argument("--near-duplicate-cosine", type=float, metavar="X",
                   help="skip invokes this similar to a buffered or trained-on text")
    p.add_argument("--spread-cosine", type=float, metavar="X",
                   help="a candidate this similar to a buffered item only replaces it, if "
                        "more informative (1: off)")
    p.add_argument("--label-cap", type=float, metavar="SHARE",
                   help="the share of a strategy's slots one predicted label may hold (1: off)")
    p.add_argument("--drift-random-factor", type=float, metavar="F",
                   help="while drift is flagged, random's rate is multiplied by this (1: off)")
    p.set_defaults(func=guarded(lambda a, client: capture(
        client, a.function_id, settings=a.set, near_duplicate_cosine=a.near_duplicate_cosine,
        spread_cosine=a.spread_cosine, label_cap=a.label_cap,
        drift_random_factor=a.drift_random_factor)))


def _setting(text: str) -> Setting:
    """`strategy.key=value`; the value as an int, else a float, else as written."""
    name, eq, raw = text.partition("=")
    strategy, dot, key = name.strip().partition(".")
    if not (eq and dot and strategy and key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected STRATEGY.KEY=VALUE, "
                                         "e.g. uncertainty.quota=50")
    value: int | float | str = raw.strip()
    for kind in (int, float):
        try:
            number = kind(raw)
        except ValueError:
            continue
        if math.isfinite(number):  # "nan" and "inf" stay text (JSON has no such numbers)
            value = number
        break
    return strategy, key.strip(), value
