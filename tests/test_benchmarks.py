"""Every benchmark and evaluation script under scripts/ runs its whole path in smoke mode (tiny
sizes on the committed smoke data, scripts/data/smoke) and ends with its JSON line, so a change
that breaks one fails here. A new script is picked up by its name; the full runs stay manual."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPTS = sorted(p.name for pattern in ("bench_*.py", "eval_*.py")
                 for p in (ROOT / "scripts").glob(pattern))
# Scripts with a second path worth keeping alive: the extra arguments of each further run.
VARIANTS = {"bench_invoke.py": [["--input", "image"]]}
RUNS = [(s, []) for s in SCRIPTS] + [(s, v) for s, vs in VARIANTS.items() for v in vs]


def test_every_benchmark_is_found():
    assert {"bench_head.py", "bench_invoke.py", "eval_capture.py"} <= set(SCRIPTS)


@pytest.mark.parametrize(("script", "extra"), RUNS,
                         ids=[" ".join([s, *v]) for s, v in RUNS])
def test_runs_in_smoke_mode_and_prints_its_figures(script, extra, encoder_dir,
                                                    accurate_encoder_dir, image_encoder_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABELLOOP_"))}
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--smoke", *extra],
                         capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, f"{script} --smoke failed:\n{out.stderr[-4000:]}"
    figures = [json.loads(line) for line in out.stdout.splitlines()
               if line.startswith('{"benchmark": ')]
    assert figures, f"{script} printed no JSON line:\n{out.stdout[-2000:]}"
    assert all(len(f) > 1 for f in figures)  # the name and at least one figure
