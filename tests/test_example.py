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



def test_the_image_example_imports_a_folder_trains_and_invokes(local_stack, capsys, tmp_path):
    import example_images

    from labelloop.client import Client
    from labelloop.local.example import IMAGE_NAME, run_image_example

    folder = example_images.write(tmp_path / "digits")
    assert len(list(folder.glob("samples/*/*.png"))) == 50
    client = Client(local_stack.url, local_stack.client_id, local_stack.client_secret)
    fid = run_image_example(client, folder)
    out = capsys.readouterr().out
    assert f"created {fid} ({IMAGE_NAME}, an Image function)" in out
    assert "50 created, 0 already there, 0 failed" in out
    right = int(re.search(r"(\d+) of 20 right, from 5 samples per digit", out)[1])
    # Few-shot MNIST at 5 per digit is about 0.77 (scripts/bench_fewshot_images.py).
    assert right >= 12, out
    assert client.get_function(fid)["input"] == "Image"
    assert run_image_example(client, folder) == fid
    assert f"found {fid} ({IMAGE_NAME}) from an earlier run" in capsys.readouterr().out
