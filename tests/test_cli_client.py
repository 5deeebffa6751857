"""The API client subcommands end to end, in process, against a real local stack."""

import json
import re
import time
from pathlib import Path

import pytest
from conftest import isolate_stack_env

from labelloop.client import ApiError

DATA = Path(__file__).resolve().parents[1] / "scripts" / "data"
LABELS = [line.split(",", 1)[0] for line in
          (DATA / "example_labels.csv").read_text().splitlines()[1:] if line.strip()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, encoder_dir):
    from labelloop.local.stack import LocalStack

    mp = pytest.MonkeyPatch()
    # The CLI must find its credentials only through the data dir.
    isolate_stack_env(mp, encoder_dir)
    data_dir = tmp_path_factory.mktemp("stack")
    with LocalStack(data_dir, port=0) as s:  # port 0: a free one
        mp.setenv("LABELLOOP_DATA_DIR", str(data_dir))
        mp.setenv("LABELLOOP_URL", s.url)
        yield s
    mp.undo()


@pytest.fixture
def cli(stack, capsys):
    """Run `labelloop ARGS…`; returns (exit status, stdout, stderr)."""
    from labelloop.cli.main import build_parser

    parser = build_parser()

    def run(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args([str(a) for a in argv])
        try:
            args.func(args)
            status = 0
        except SystemExit as stop:
            status = stop.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def test_functions_create_with_labels_and_list(cli, state):
    status, out, _ = cli("functions", "create", "support", "--labels", DATA / "example_labels.csv")
    assert status == 0
    state["fid"] = fid = out.strip()
    assert fid.startswith("function_")
    status, out, _ = cli("functions", "list")
    assert status == 0 and fid in out and "support" in out


def test_functions_create_on_the_accurate_encoder(cli, api, accurate_encoder_dir):
    status, out, _ = cli("functions", "create", "precise", "--encoder", "accurate")
    assert status == 0
    fid = out.strip()
    assert api.get_function(fid)["encoder"] == "accurate"
    status, out, _ = cli("functions", "list")
    assert status == 0 and next(line for line in out.splitlines() if fid in line).split()[
        3] == "accurate"
    with pytest.raises(SystemExit):  # argparse: exit 2, naming the choices
        cli("functions", "create", "x", "--encoder", "huge")
    cli("functions", "delete", fid)


def test_import_then_reimport_is_all_duplicates(cli, state):
    n = len((DATA / "example_samples.csv").read_text().strip().splitlines()) - 1
    status, out, _ = cli("import", state["fid"], DATA / "example_samples.csv")
    assert status == 0, out
    assert f"{n} created, 0 already there, 0 failed" in out
    status, out, _ = cli("import", state["fid"], DATA / "example_samples.csv")
    assert status == 0, out
    assert f"0 created, {n} already there, 0 failed" in out


def test_an_item_the_api_refuses_in_a_bulk_import_is_named_by_its_line(cli, api, tmp_path):
    """Texts go in bulk requests; one the API refuses fails alone, reported at its line
    (missing labels created first)."""
    fid = api.create_function("mixed import")["id"]
    rows = tmp_path / "mixed.jsonl"
    rows.write_text("".join([
        '{"text": "A fresh question about my second invoice", "label": "billing"}\n',
        json.dumps({"text": "x" * 50_001, "label": "billing"}) + "\n",
        '{"text": "Another new question: the app froze on login", "label": "bug_report"}\n']))
    status, out, err = cli("import", fid, rows)
    assert status == 1
    assert "2 created, 0 already there, 1 failed" in out
    assert f"{rows}:2: 400 data: at most 50000 characters" in out + err


def test_import_bad_row_names_file_and_line(cli, state, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "billing"}\n\n{"label": "billing"}\nnot json\n')
    status, _, err = cli("import", state["fid"], bad)
    assert status == 1
    assert f"{bad}:3: " in err and f"{bad}:4: invalid JSON" in err and "nothing imported" in err


def test_import_a_folder_of_images_one_subfolder_per_label(cli, api, image_encoder_dir,
                                                         sample_photos, tmp_path):
    import io

    from PIL import Image

    photos = tmp_path / "photos"
    for label, name, fmt in (("cat", "chelsea.png", "JPEG"), ("cup", "coffee.png", "PNG")):
        (photos / label).mkdir(parents=True)
        img = Image.open(io.BytesIO(sample_photos[name])).convert("RGB")
        for i in range(3):
            img.crop((i * 9, i * 7, img.width - 20, img.height - 10)).save(
                photos / label / f"{i}.{fmt.lower()}", format=fmt)
    Image.open(io.BytesIO(sample_photos["rocket.jpg"])).save(photos / "unsorted.jpg")
    (photos / "notes.txt").write_text("taken in May")
    status, out, _ = cli("functions", "create", "pets", "--input", "Image")
    assert status == 0
    fid = out.strip()
    assert api.get_function(fid)["input"] == "Image"

    status, out, err = cli("import", fid, photos)
    assert status == 0, (out, err)
    assert "7 created, 0 already there, 0 failed" in out
    assert "created 2 labels: cat, cup" in err and f"skipped {photos / 'notes.txt'}" in err
    samples = {s["externalId"]: s for s in api.samples(fid)}
    names = {lb["id"]: lb["name"] for lb in api.list_labels(fid)}
    assert {k: names[s["annotation"]["labelId"]] if s.get("annotation") else None
            for k, s in samples.items()} == {
        **{f"cat/{i}.jpeg": "cat" for i in range(3)}, **{f"cup/{i}.png": "cup" for i in range(3)},
        "unsorted.jpg": None}
    status, out, _ = cli("import", fid, photos)
    assert status == 0 and "0 created, 7 already there, 0 failed" in out

    # A file named as an image that holds none stops the import before anything is sent.
    (photos / "cat" / "9.jpg").write_text("not a picture")
    status, _, err = cli("import", fid, photos)
    assert status == 1 and f"{photos / 'cat' / '9.jpg'}: not a JPEG" in err
    assert "nothing imported" in err and len(list(api.samples(fid))) == 7


def test_a_folder_goes_into_an_image_function_only(cli, state, tmp_path):
    (tmp_path / "cat").mkdir()
    status, _, err = cli("import", state["fid"], tmp_path)
    assert status == 1 and "a folder of images goes into an Image function" in err


def test_train_wait_invoke_and_models(cli, state):
    fid = state["fid"]
    status, out, _ = cli("train", fid, "--wait", "--timeout", "60")
    assert status == 0
    assert re.search(r"live model: v\d+ \(cv accuracy \d\.\d{3}, 30 samples\)", out), out

    queries = [q for q in (DATA / "example_queries.txt").read_text().splitlines() if q.strip()]
    query = queries[0]
    status, out, _ = cli("invoke", fid, query)
    assert status == 0
    assert out.split()[0] in LABELS and "next:" in out
    status, out, _ = cli("invoke", fid, "--json", "--file", DATA / "example_queries.txt")
    results = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and len(results) == len(queries)
    assert all(r["labelName"] in LABELS and r["modelVersion"] for r in results)

    status, out, _ = cli("models", fid)
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["version", "live", "zero-shot", "samples", "lighter", "cv",
                              "acc", "ECE", "promoted", "decision"]
    live = [r for r in rows if r.split()[1] == "*"]
    assert len(live) == 1


def test_invoke_record_is_written_after_the_response_with_its_prediction(stack, state):
    """Over the local gateway the record is written once the response is out (as Lambda's
    extension does): feedback sent at once still finds it, and it holds the prediction."""
    from labelloop.client import Client
    from labelloop.container import deps
    from labelloop.ids import bare

    client = Client(stack.url, stack.client_id, stack.client_secret)
    fid = state["fid"]
    out = client.invoke(fid, "my card was charged twice this month")
    sample = client.annotate(fid, out["sampleId"], "billing")
    assert sample["id"] == out["sampleId"] and sample["origin"] == "InvokeFeedback"
    record = deps().invokes.get(bare(fid, "function"), bare(out["sampleId"], "sample"),
                                time.time())
    assert record.label_id == bare(out["labelId"], "label")
    assert record.confidence == pytest.approx(out["confidence"], abs=1e-6)
    ranked = sorted((c["confidence"] for c in out["labelConfidences"]), reverse=True)
    assert record.margin == pytest.approx(ranked[0] - ranked[1], abs=1e-5)
    assert record.model_version == out["modelVersion"]


def test_rollback_to_the_first_live_version_then_fails(cli, state):
    """Each rollback goes one promotion back; with one version left live there is nowhere to
    go, and the API's message reaches the user."""
    for _ in range(20):
        status, out, err = cli("rollback", state["fid"])
        if status:
            break
        assert out.startswith("rolled back: live model is now v")
    assert status == 1 and out == ""
    assert err == "error: 409 no earlier live version to roll back to\n"


def test_promote_and_errors(cli, state, stack):
    assert stack.wait_idle(timeout=120)  # the retrain the feedback above queued has run
    fid = state["fid"]
    newest = max(int(row.split()[0]) for row in cli("models", fid)[1].splitlines()[1:])
    status, out, _ = cli("promote", fid, newest)
    assert (status, out) == (0, f"live model: v{newest}\n")
    status, _, err = cli("promote", fid, 999)
    assert status == 1 and err.startswith("error: 404 ")
    status, _, err = cli("models", "function_doesnotexist")
    assert status == 1 and err.startswith("error: 404 ") and "Traceback" not in err
    status, _, err = cli("models", fid, "--client-secret", "wrong")
    assert (status, err) == (1, "error: 401 invalid client_id or client_secret\n")


def test_thresholds_report_set_and_clear_the_policy(cli, state, api):
    fid = state["fid"]
    status, out, _ = cli("thresholds", fid, "--target-precision", "0.6")
    assert status == 0, out
    assert re.match(r"model v\d+: \d+ cross-validated predictions \(1 picked for being hard, "
                    r"left out of the curves\), 0 annotated random captures "
                    r"· target precision 0\.6\n", out), out
    assert re.search(r"^overall: (accept at confidence >= [\d.]+: precision|no threshold)",
                     out, flags=re.M), out
    assert "policy: none" in out
    rows = {line.split()[0] for line in out.splitlines()[4:]}
    assert rows == set(LABELS)
    status, out, _ = cli("thresholds", fid, "--curve", "--label", LABELS[0])
    assert status == 0 and re.search(rf"^label {LABELS[0]}: ", out, flags=re.M)
    curve = [line.split() for line in out.splitlines() if re.match(r"\d\.\d\d\s", line)]
    assert [c[0] for c in curve] == [f"{i / 20:.2f}" for i in range(21)]

    status, out, _ = cli("thresholds", fid, "--set", "--accept", "0.8", "--review", "0.5")
    assert status == 0, out
    assert out.startswith("policy saved: accept at confidence >= 0.8\n")
    assert "policy: accept at confidence >= 0.8, review at confidence >= 0.5" in out
    answer = api.invoke(fid, "my card was charged twice this month")
    assert answer["decisionThreshold"] == 0.8 and answer["decision"] in (
        "accept", "review", "reject")
    status, out, _ = cli("thresholds", fid, "--set", "--target-precision", "0.9")
    assert status == 0 and "re-solved per model version" in out
    assert api.thresholds(fid)["policy"]["accept"] == {"targetPrecision": 0.9}

    status, _, err = cli("thresholds", fid, "--review", "0.5")
    assert (status, err) == (1, "error: --accept and --review go with --set\n")
    status, _, err = cli("thresholds", fid, "--set", "--accept", "0.5", "--review", "0.9")
    assert status == 1 and err.startswith("error: 400 review.confidence: ")
    with pytest.raises(SystemExit):  # argparse: exit 2, naming the option
        cli("thresholds", fid, "--target-precision", "1.5")
    status, out, _ = cli("thresholds", fid, "--clear")
    assert (status, out) == (0, "policy removed: invokes carry no decision\n")
    assert "decision" not in api.invoke(fid, "my card was charged twice this month")


def test_delete(cli, state):
    status, out, _ = cli("functions", "delete", state["fid"])
    assert status == 0
    status, out, _ = cli("functions", "list")
    assert state["fid"] not in out


# -- review, capture policy, live accuracy ---------------------------------------------------

UNSEEN = ["the exported PDF is missing its last page",
          "do you have a discount for registered charities",
          "my colleague cannot open the folder I shared with her",
          "the mobile app closes whenever I rotate the screen"]


@pytest.fixture(scope="module")
def api(stack):
    from labelloop.client import Client

    return Client(stack.url, stack.client_id, stack.client_secret)


def _queue(api, fid: str, n: int, strategy: str | None = None) -> list[dict]:
    """The review queue once it holds n items: captures are written after the response."""
    deadline = time.monotonic() + 20
    while len(items := api.review_queue(fid, strategy)) < n:
        assert time.monotonic() < deadline, f"{len(items)} of {n} captures after 20 s"
        time.sleep(0.1)
    return items


def _review(cli, monkeypatch, keys: str, *argv: str) -> tuple[int, str, str, list[str]]:
    """`labelloop review …` with `keys` piped in; also returns the item ids in shown order."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(keys))
    status, out, err = cli("review", *argv)
    return status, out, err, re.findall(r"^(sample_\S+)  \[", out, flags=re.M)


def _sample(api, fid: str, sid: str) -> dict:
    return api.request("GET", f"/v1/functions/{fid}/samples/{sid}")


def test_review_keys_are_interpreted():
    from labelloop.cli.review import Action, interpret

    names = [f"l{i}" for i in range(1, 12)] + ["Spam"]
    assert interpret("1", names) == Action("label", "l1")
    assert interpret("0", names) == Action("label", "l10")
    assert interpret("12", names) == Action("label", "Spam")
    assert interpret("spam", names) == Action("label", "Spam")
    assert [interpret(k, names).kind for k in "sdkuqS"] == [
        "skip", "dismiss", "keep", "undo", "quit", "skip"]
    assert interpret("13", names) == "no label 13 (1-12)"
    assert interpret("x", names).startswith("unknown key")


def test_capture_policy_set_and_show(cli, state):
    status, out, _ = cli("functions", "create", "review", "--labels", DATA / "example_labels.csv")
    state["rfid"] = fid = out.strip()
    assert cli("import", fid, DATA / "example_samples.csv")[0] == 0
    assert cli("train", fid, "--wait", "--timeout", "60")[0] == 0

    status, out, _ = cli("capture", fid)
    assert status == 0 and out.startswith("near-duplicate cosine: ")
    assert re.search(r"^uncertainty\s+0/\d+\s+threshold=", out, flags=re.M), out
    # Every invoke to uncertainty: its threshold 0 takes anything, the others take nothing.
    status, out, _ = cli("capture", fid, "--set", "uncertainty.threshold=0",
                         "--set", "uncertainty.quota=5", "--set", "random.quota=0",
                         "--set", "rare_class.quota=0", "--near-duplicate-cosine", "0.99",
                         "--spread-cosine", "0.85", "--label-cap", "0.2",
                         "--drift-random-factor", "3")
    assert status == 0, out
    assert out.startswith("near-duplicate cosine: 0.99; spread: similar from cosine 0.85, a "
                          "label holds at most 0.2 of a strategy's slots; under drift, random "
                          "samples 3 times as often\n"), out
    assert re.search(r"^uncertainty\s+0/5\s+threshold=0\.0 measure=margin$", out, flags=re.M)
    assert re.search(r"^random\s+0/0\s+rate=", out, flags=re.M)


def test_capture_bad_setting_exits_2_naming_it(cli, state):
    fid = state["rfid"]
    status, out, err = cli("capture", fid, "--set", "uncertainty.quota=-1")
    assert (status, out) == (2, "")
    assert err.startswith("error: 400 ") and "uncertainty.quota" in err
    status, _, err = cli("capture", fid, "--set", "uncertainty.colour=red")
    assert status == 2 and "uncertainty.colour" in err
    assert re.search(r"^uncertainty\s+0/5\s", cli("capture", fid)[1], flags=re.M)  # unchanged


def test_review_annotate_skip_dismiss_undo(cli, state, api, monkeypatch):
    fid = state["rfid"]
    for text in UNSEEN:
        api.invoke(fid, text)
    assert {i["data"] for i in _queue(api, fid, 4)} == set(UNSEEN)
    labels = api.list_labels(fid)

    # Pages of 2: the second page is fetched past the skipped item, which is not shown again.
    status, out, _, shown = _review(cli, monkeypatch, "1\ns\nd\nu\nq\n", fid,
                                    "--batch-size", "2")
    assert status == 0, out
    assert len(set(shown)) == 4  # the fourth is on screen when the undo fails
    annotated, skipped, dismissed, _ = shown
    assert "cannot undo: " in out and "dismissed" in out
    assert out.endswith("review: 1 annotated, 1 dismissed, 1 skipped\n")
    sample = _sample(api, fid, annotated)
    assert sample["annotation"]["labelId"] == labels[0]["id"]
    assert "inReviewQueue" not in sample
    with pytest.raises(ApiError) as gone:
        _sample(api, fid, dismissed)
    assert gone.value.status == 404
    left = {i["id"] for i in api.review_queue(fid)}
    assert skipped in left and len(left) == 2 and not left & {annotated, dismissed}

    # Undoing an annotation clears it and returns the item to the queue; it is shown again.
    status, out, _, shown = _review(cli, monkeypatch, "2\nu\nq\n", fid)
    assert status == 0, out
    first, second = shown[:2]
    assert shown == [first, second, first] and {first, second} == left
    assert f"undone: annotation of {first} cleared; it is back in the review queue" in out
    assert "(no longer in the review queue" not in out
    assert out.endswith("review: 0 annotated, 0 dismissed, 0 skipped\n")
    assert "annotation" not in _sample(api, fid, first)
    assert first in {i["id"] for i in api.review_queue(fid)}

    # Everything skipped: the queue runs out; the end of the input quits too.
    status, out, _, shown = _review(cli, monkeypatch, "s\n" * 5, fid, "--batch-size", "1")
    assert status == 0 and set(shown) == {first, second} and len(shown) == 2
    assert "the review queue is empty" in out
    assert out.endswith("review: 0 annotated, 0 dismissed, 2 skipped\n")


def test_review_suspects_keep_relabel_undo_delete(cli, api, monkeypatch):
    from test_suspects import FLIPPED, flipped_function

    fid = flipped_function(api, "suspects")
    assert cli("train", fid, "--wait", "--timeout", "60")[0] == 0

    # k keeps the first; 1 relabels the second, u puts its old label back and shows it again;
    # d deletes it; u cannot bring a deleted sample back.
    status, out, _, shown = _review(cli, monkeypatch, "k\n1\nu\nd\nu\nq\n", fid,
                                    "--strategy", "suspect")
    assert status == 0, out
    kept, second, third, *again = shown
    assert again == [second, third] and len({kept, second, third}) == 3
    assert re.search(r"^  annotated (billing|bug|account) \(0\.\d\d\), model says "
                     r"(billing|bug|account) \(0\.\d\d\)$", out, flags=re.M), out
    assert "k: keep  d: delete" in out and "cannot undo: " in out
    assert out.endswith("review: 0 relabelled, 1 kept, 1 deleted, 0 skipped\n")
    assert _sample(api, fid, kept)["kept"] is True
    assert {_sample(api, fid, kept)["data"]} <= set(FLIPPED)
    with pytest.raises(ApiError) as gone:
        _sample(api, fid, second)
    assert gone.value.status == 404
    left = [i["id"] for i in api.review_queue(fid, "suspect")]
    assert third in left and not {kept, second} & set(left)


def test_accuracy_from_annotated_random_captures(cli, state, api, monkeypatch):
    fid = state["rfid"]
    status, out, _ = cli("accuracy", fid)
    assert status == 0 and f"labelloop review {fid} --strategy random" in out
    status, out, _ = cli("capture", fid, "--set", "random.rate=1.0", "--set", "random.quota=5",
                         "--set", "uncertainty.quota=0")
    assert status == 0 and re.search(r"^random\s+0/5\s+rate=1\.0$", out, flags=re.M), out

    api.invoke(fid, "where can I download last year's receipts")
    item, = _queue(api, fid, 1, "random")
    assert item["captureReason"] == "random"
    status, out, _, shown = _review(cli, monkeypatch, "1\nq\n", fid, "--strategy", "random")
    assert status == 0 and shown == [item["id"]]

    status, out, _ = cli("accuracy", fid)
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["version", "annotated", "accuracy", "95%", "interval"]
    assert len(rows) == 1
    assert re.fullmatch(r"v\d+\s+1\s+[01]\.000\s+0\.\d{3}-[01]\.\d{3}", rows[0]), rows
