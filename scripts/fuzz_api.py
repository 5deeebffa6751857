"""The long fuzzing profile: every operation of the OpenAPI document, many more cases than
the test command's (tests/test_fuzz.py), in-process against moto with two clients' real
state (tests/apiworld.py). Prints each operation's case count, the status codes seen, and
every distinct failure (5xx, a status the document does not declare, a body off its schema)
with curl commands that reproduce it.

    .venv/bin/python scripts/fuzz_api.py [--examples 200] [--negative 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="positive cases per operation")
    parser.add_argument("--negative", type=int, default=100, help="negative cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help='one operation, e.g. "POST /v1/functions"')
    args = parser.parse_args()

    import subprocess

    from apiworld import moto_api, populate
    from fuzzing import run

    from labelloop.encoder import Encoder, Encoders
    from labelloop.handlers.api import handler
    from labelloop.local.gateway import Gateway

    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_encoder.py")], check=True)
    encoders = Encoders()
    encoders.put(Encoder(ROOT / "layers" / "encoder"))
    started = time.monotonic()
    with moto_api(encoders) as api:
        tenant = populate(api, "client-a")
        print(f"world ready in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        report = run(Gateway(handler), tenant, args.examples, args.negative, args.seed,
                     log=lambda line: print(line, flush=True), only=args.only)
    cases = sum(report.cases.values())
    print(f"\n{report.operations} operations, {cases} cases in "
          f"{time.monotonic() - started:.0f} s; statuses "
          f"{dict(sorted(report.statuses.items()))}; {len(report.failures)} distinct failures")
    for failure, curls in sorted(report.failures.items()):
        print(f"\nFAIL {failure}")
        for curl in curls:
            print(f"    {curl}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
