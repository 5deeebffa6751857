"""`labelloop thresholds`: what each confidence threshold would give (the thresholds report),
and the function's decision policy (set, clear)."""

from __future__ import annotations

import argparse

from labelloop.cli.connection import guarded
from labelloop.cli.errors import CliError
from labelloop.cli.output import num, print_table
from labelloop.client import Client


def thresholds(client: Client, function_id: str, *, target_precision: float | None = None,
               model_version: int | None = None, label: str | None = None,
               curve: bool = False, set_policy: bool = False, clear_policy: bool = False,
               accept: float | None = None, review: float | None = None) -> None:
    """Print the thresholds report; `set_policy` first saves a policy (accept at
    `target_precision` or at the fixed `accept` confidence; below `review`, reject),
    `clear_policy` only removes it."""
    if (accept is not None or review is not None) and not set_policy:
        raise CliError("--accept and --review go with --set")
    if clear_policy:
        client.clear_thresholds(function_id)
        print("policy removed: invokes carry no decision")
        return
    if set_policy:
        rule = ({"confidence": accept} if accept is not None
                else {"targetPrecision": target_precision or 0.95})
        policy = {"accept": rule}
        if review is not None:
            policy["review"] = {"confidence": review}
        saved = client.set_thresholds(function_id, policy)
        print(f"policy saved: accept {_rule(rule)}")
        if "modelVersion" not in saved:
            print("it applies once a model is live")
            return
    _print_report(client.thresholds(function_id, target_precision, model_version, label),
                  curve)


def _print_report(r: dict, curve: bool) -> None:
    ev = r["evidence"]
    print(f"model v{r['modelVersion']}: {ev['crossValidated']} cross-validated predictions "
          f"({ev['picked']} picked for being hard, left out of the curves), "
          f"{ev['randomCaptures']} annotated random captures · target precision "
          f"{r['targetPrecision']:g}")
    print("overall: " + _recommendation(r["overall"]))
    policy = r.get("policy")
    if policy:
        review = policy.get("review")
        print(f"policy: accept {_rule(policy['accept'])}"
              + (f", review {_rule(review)} (below: reject)" if review else "")
              + (f", {len(policy.get('perLabel') or {})} label overrides"
                 if policy.get("perLabel") else ""))
    else:
        print("policy: none (invokes carry no decision; --set saves one)")
    applied = {a["labelId"]: a for a in r.get("applied") or []}
    rows = []
    for x in sorted(r["perLabel"], key=lambda x: (x["labelName"] or "", x["labelId"])):
        rec = x.get("recommended")
        a = applied.get(x["labelId"])
        rows.append([x["labelName"] or x["labelId"], str(x["support"]), num(x["precision"]),
                     num(x["recall"]), num(rec["threshold"]) if rec else "-",
                     (num(a["accept"]) if a else "")])
    print_table(["label", "samples", "precision", "recall", "own threshold", "applied"],
                rows)
    if "label" in r:
        print(f"label {r['label']['labelName']}: " + _recommendation(r["label"]))
    if curve:
        c = (r.get("label") or r["overall"])["curve"]
        rows = [[f"{t:.2f}", str(c["covered"][i]), num(c["coverage"][i]),
                 num(c["precision"][i]),
                 f"{num(c['precisionLow'][i])}-{num(c['precisionHigh'][i])}"]
                for i, t in enumerate(c["threshold"]) if i % 10 == 0]
        print_table(["threshold", "covered", "coverage", "precision", "95% interval"], rows)


def _recommendation(s: dict) -> str:
    rec = s.get("recommended")
    if rec is None:
        return f"no threshold can promise it ({s.get('reason')})"
    p, c = rec["precisionInterval95"], rec["coverageInterval95"]
    return (f"accept at confidence >= {rec['threshold']:g}: precision {num(rec['precision'])} "
            f"({num(p[0])}-{num(p[1])}), coverage {num(rec['coverage'])} "
            f"({num(c[0])}-{num(c[1])}), on {s['source']}")


def _rule(rule: dict) -> str:
    if "targetPrecision" in rule:
        return f"at target precision {rule['targetPrecision']:g} (re-solved per model version)"
    return f"at confidence >= {rule['confidence']:g}"


def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "thresholds", parents=[conn], help="recommended confidence thresholds; the policy",
        description="Print, for a target precision, the lowest confidence threshold that shows "
                    "it with 95 % confidence (overall and per label) and what it would cover, "
                    "measured on the live model version's cross-validated predictions (or on "
                    "annotated random captures once there are enough). --set saves a decision "
                    "policy: invokes then carry decision (accept / review / reject) and "
                    "decisionThreshold; a target is re-solved at every new model version.")
    p.add_argument("function_id")
    p.add_argument("--target-precision", type=_target, metavar="P",
                   help="e.g. 0.95 (default: the policy's target, else 0.95)")
    p.add_argument("--model-version", type=int, metavar="V", help="default: the live one")
    p.add_argument("--label", metavar="NAME",
                   help="also print this label's recommendation (its curve with --curve)")
    p.add_argument("--curve", action="store_true",
                   help="print the curve (overall, or --label's) every 0.05")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--set", action="store_true",
                   help="save a policy: accept at --target-precision (default 0.95), or at a "
                        "fixed --accept confidence")
    g.add_argument("--clear", action="store_true", help="remove the policy")
    p.add_argument("--accept", type=_confidence, metavar="C",
                   help="with --set: accept at this fixed confidence instead of a target")
    p.add_argument("--review", type=_confidence, metavar="C",
                   help="with --set: below it, reject instead of review")
    p.set_defaults(func=guarded(lambda a, client: thresholds(
        client, a.function_id, target_precision=a.target_precision,
        model_version=a.model_version, label=a.label, curve=a.curve, set_policy=a.set,
        clear_policy=a.clear, accept=a.accept, review=a.review)))


def _target(text: str) -> float:
    x = _number(text)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a precision above 0 and below 1")
    return x


def _confidence(text: str) -> float:
    x = _number(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a confidence from 0 to 1")
    return x


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
