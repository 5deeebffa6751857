"""The README's main job (`scripts/run.sh` = `labelloop local --example`) against the real
local stack: create, train, invoke, then the capture/review/retrain loop; a rerun finds the
function and its reviewed queue."""

from __future__ import annotations

import re

from labelloop.local.example import EXAMPLES, NAME, run_example


def test_the_example_runs_end_to_end_and_again(local_stack, capsys):
    fid = run_example(local_stack.url, local_stack.client_id, local_stack.client_secret)
    out = capsys.readouterr().out
    assert f"created {fid} ({NAME})" in out
    assert "30 created, 0 already there, 0 failed" in out
    assert re.search(r"live model: v\d+ \(cv accuracy", out)
    queries = [q.strip() for q in (EXAMPLES / "example_queries.txt").read_text().splitlines()
               if q.strip()]
    assert all(q in out for q in queries)  # every query printed with its prediction
    assert re.search(r"random\s+\d+ / 50 slots", out)
    assert "review: annotating the top 5" in out
    assert re.search(r"live model: v\d+ -> v\d+|trained, not promoted", out), out[-800:]

    assert run_example(local_stack.url, local_stack.client_id, local_stack.client_secret) == fid
    again = capsys.readouterr().out
    assert f"found {fid} ({NAME}) from an earlier run" in again

