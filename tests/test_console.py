"""The web console in a real browser (Debian's Chromium through Playwright) against the real
local stack: sign-in, the review queue by keyboard (with undo, deferred dismiss and "select
similar"), the suspected mislabels' tab, the retrain that follows, the samples browser and its
try-it box, and the error and expired-session states. Every effect is checked through the API,
not only on screen.

Screenshots go to artifacts/console/ (git-ignored)."""

from __future__ import annotations

import re
import time

import pytest
from conftest import ROOT, isolate_stack_env, trained_function
from test_suspects import FLIPPED, TEXTS, flipped_function
from test_suspects import LABELS as SUSPECT_LABELS

from labelloop.client import ApiError, Client

SHOTS = ROOT / "artifacts" / "console"

# Keys 1-4 by default: labels in name order.
LABELS = {"account": "Logging in, passwords, two-factor codes and locked accounts",
          "billing": "Charges, invoices, refunds and payment methods",
          "bug": "Something in the product is broken or behaves wrongly",
          "feature_request": "A suggestion for something new the product should do"}
KEY = {name: str(i + 1) for i, name in enumerate(sorted(LABELS))}
# An image function's labels, cat and cup, in name order.
SAMPLES = [("I forgot my password and the reset mail never comes", "account"),
           ("My account is locked after too many attempts", "account"),
           ("How do I turn on two-factor authentication?", "account"),
           ("I cannot log in since I changed my email address", "account"),
           ("I was charged twice this month", "billing"),
           ("Can I get a refund for the annual plan?", "billing"),
           ("Please send me an invoice with our VAT number", "billing"),
           ("How much does the team plan cost per seat?", "billing"),
           ("The app crashes when I open settings", "bug"),
           ("The save button does nothing", "bug"),
           ("Export to PDF produces an empty file", "bug"),
           ("Search returns nothing even though the item exists", "bug"),
           ("Please add a dark mode", "feature_request"),
           ("It would be great to schedule reports weekly", "feature_request"),
           ("Could you support single sign-on with Okta?", "feature_request"),
           ("I'd love keyboard shortcuts in the editor", "feature_request")]
# What a reviewer would answer for each captured invoke.
TRUTH = {"Why is there a second charge from you on my statement?": "billing",
         "The mobile app logs me out every few minutes": "bug",
         "It would be nice to export dashboards as images": "feature_request",
         "My two-factor code never arrives by SMS": "account",
         "The invoice PDF shows the wrong company address": "billing",
         "Uploading a CSV over 5 MB spins forever": "bug",
         "Can I pay by bank transfer instead of card?": "billing",
         "Notifications arrive twice on Android": "bug",
         "Please let us archive old projects": "feature_request",
         "I am locked out after resetting my phone": "account"}
TRAFFIC = list(TRUTH)
# Paraphrases of one complaint (pairwise cosine ≈ 0.63–0.92) and one unrelated text.
CLUSTER = ["I was charged twice for my subscription this month",
           "My card got charged two times for the subscription this month",
           "You billed me twice for this month's subscription",
           "There is a double charge for my subscription on this month's statement",
           "Why did my subscription get charged twice in May?",
           "The subscription fee was taken from my card two times"]
UNRELATED = "The export button crashes the app"


# -- the stack, the data, the browser ----------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory, encoder_dir):
    from labelloop.local.stack import LocalStack

    mp = pytest.MonkeyPatch()
    isolate_stack_env(mp, encoder_dir)
    with LocalStack(tmp_path_factory.mktemp("console"), port=0, stage="console",
                    retry_seconds=1, persist=False) as s:
        s.client = Client(s.url, s.client_id, s.client_secret)
        yield s
    mp.undo()


def seeded(stack, name: str, traffic: list[str]) -> str:
    """A trained function whose review queue holds `traffic` (every invoke captured by the
    random strategy), once nothing is left running."""
    client = stack.client
    fid = trained_function(stack, client, name, LABELS, SAMPLES)
    client.set_capture_policy(fid, {"random": {"rate": 1.0, "quota": 50}})
    for text in traffic:
        client.invoke(fid, text)
    assert stack.wait_idle(timeout=60)
    queued = {s["data"] for s in client.review_queue(fid, batch_size=100)}
    assert queued == set(traffic), "every invoke should have been captured"
    return fid


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, stack, *, screenshot: bool = False) -> None:
    page.goto(f"{stack.url}/console/")
    page.get_by_test_id("signin-page").wait_for()
    if screenshot:
        shot(page, "signin")
    page.get_by_label("Client id").fill(stack.client_id)
    page.get_by_label("Client secret").fill(stack.client_secret)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("function-list").wait_for()
    # The secret is never kept; the token is, for this tab only.
    stored = page.evaluate("JSON.stringify([{...sessionStorage}, {...localStorage}])")
    assert stack.client_secret not in stored and "labelloop.token" in stored


def open_review(page, stack, fid: str) -> None:
    page.goto(f"{stack.url}/console/#/functions/{fid}/review")
    page.get_by_test_id("review-item").wait_for()


def current_id(page) -> str:
    return page.get_by_test_id("review-item").get_attribute("data-sample-id")


def wait_moved_on(page, old: str) -> str | None:
    """The id of the item shown once the page has left `old` (None: the queue is done)."""
    shown = page.wait_for_function(
        """old => {
            const el = document.querySelector('[data-testid=review-item]');
            if (el) return el.dataset.sampleId !== old && el.dataset.sampleId;
            return document.querySelector('[data-testid=review-empty]') && 'none';
        }""", arg=old).json_value()
    return None if shown == "none" else shown


def wait_for(check, timeout: float = 15, what: str = "condition"):
    """Polls the API (whose writes the page sends asynchronously) until `check()` is truthy."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def annotation(stack, fid: str, sid: str) -> str | None:
    sample = stack.client.request("GET", f"/v1/functions/{fid}/samples/{sid}")
    return (sample.get("annotation") or {}).get("labelId")


def label_ids(stack, fid: str) -> dict[str, str]:
    return {lb["name"]: lb["id"] for lb in stack.client.list_labels(fid)}


# -- the main loop -----------------------------------------------------------------------

def test_review_by_keyboard_annotates_and_the_retrained_version_shows(stack, page):
    fid = seeded(stack, "support-inbox", TRAFFIC)
    ids = label_ids(stack, fid)
    versions_before = max(m["version"] for m in stack.client.list_models(fid))

    sign_in(page, stack, screenshot=True)
    row = page.locator(f'[data-testid=function-row][data-function-id="{fid}"]')
    shot(page, "functions")
    row.get_by_role("link", name="support-inbox").click()
    page.get_by_test_id("models-table").wait_for()
    page.get_by_test_id("tab-review").click()
    page.get_by_test_id("review-item").wait_for()
    left = page.get_by_test_id("review-left")
    assert left.get_attribute("data-count") == str(len(TRAFFIC))
    shot(page, "review")

    def truth() -> str:
        return TRUTH[page.get_by_test_id("review-text").inner_text()]

    chosen: dict[str, str] = {}
    first = current_id(page)
    chosen[first] = truth()
    page.keyboard.press(KEY[chosen[first]])
    second = wait_moved_on(page, first)

    # Skip, then undo the skip: the skipped item comes back.
    page.keyboard.press("s")
    third = wait_moved_on(page, second)
    assert third not in chosen
    page.keyboard.press("u")
    assert wait_moved_on(page, third) == second
    chosen[second] = truth()
    page.keyboard.press(KEY[chosen[second]])
    assert wait_moved_on(page, second) == third

    # A slip of the finger, undone: cleared on the server, and the item shows again.
    chosen[third] = truth()
    wrong = next(name for name in sorted(LABELS) if name != chosen[third])
    page.keyboard.press(KEY[wrong])
    fourth = wait_moved_on(page, third)
    wait_for(lambda: annotation(stack, fid, third) == ids[wrong], what="third annotated")
    page.keyboard.press("u")
    assert wait_moved_on(page, fourth) == third
    wait_for(lambda: annotation(stack, fid, third) is None, what="the annotation undone")
    page.keyboard.press(KEY[chosen[third]])
    assert wait_moved_on(page, third) == fourth

    for sid, name in chosen.items():
        wait_for(lambda sid=sid, name=name: annotation(stack, fid, sid) == ids[name],
                 what=f"{sid} annotated {name}")
    assert not {sid for sid in chosen} & {s["id"] for s in stack.client.review_queue(fid)}
    page.wait_for_selector(f'[data-testid=review-left][data-count="{len(TRAFFIC) - 3}"]')

    # The annotations queue a retrain: the overview shows the new version once it exists.
    page.get_by_test_id("tab-overview").click()
    page.locator(f'[data-testid=model-row][data-version="{versions_before + 1}"]').wait_for(
        timeout=90_000)
    assert stack.wait_idle(timeout=90)
    newest = max(m["version"] for m in stack.client.list_models(fid))
    page.locator(f'[data-testid=model-row][data-version="{newest}"]').wait_for(timeout=30_000)
    page.wait_for_selector("[data-testid=training-indicator][data-state=idle]", timeout=30_000)
    live = stack.client.get_function(fid)["liveModelVersion"]
    live_row = page.locator(f'[data-testid=model-row][data-version="{live}"]')
    assert live_row.get_by_test_id("live-badge").is_visible()
    assert page.get_by_test_id("live-badge").count() == 1
    # Charts: accuracy per version, and the confidences of the 10 stored invokes in 10 bins.
    assert page.locator("[data-testid=accuracy-chart] .dot-cv").count() >= 2
    bars = page.locator("[data-testid=confidence-histogram] rect.bar")
    assert bars.count() == 10
    assert sum(int(b.get_attribute("data-count")) for b in bars.all()) == len(TRAFFIC)
    counts = page.locator('[data-testid=label-row]')
    assert counts.count() == len(LABELS)
    for name in LABELS:  # 4 samples each, plus what the review added
        label_row = page.locator(f'[data-testid=label-row][data-label-id="{ids[name]}"]')
        expected = 4 + sum(1 for chosen_name in chosen.values() if chosen_name == name)
        assert label_row.get_by_test_id("label-count").inner_text() == str(expected), name
    shot(page, "overview")

    # Promote an older version by hand, then roll back to the one before.
    page.get_by_test_id(f"promote-{versions_before}").click()
    page.locator(f'[data-testid=model-row][data-version="{versions_before}"]'
                 ' [data-testid=live-badge]').wait_for()
    assert stack.client.get_function(fid)["liveModelVersion"] == versions_before
    page.get_by_test_id("rollback").click()
    page.locator(f'[data-testid=model-row][data-version="{live}"] [data-testid=live-badge]'
                 ).wait_for()
    assert stack.client.get_function(fid)["liveModelVersion"] == live


# -- the review queue's other moves ------------------------------------------------------

def test_select_similar_labels_the_item_and_the_checked_neighbours_in_one_call(stack, page):
    fid = seeded(stack, "similar", [*CLUSTER, UNRELATED])
    ids = label_ids(stack, fid)
    sign_in(page, stack)
    open_review(page, stack, fid)
    # Whatever the random priorities put first: start from one of the paraphrases.
    while page.get_by_test_id("review-text").inner_text() not in CLUSTER:
        shown = current_id(page)
        page.keyboard.press("s")
        wait_moved_on(page, shown)
    target = current_id(page)

    page.keyboard.press("f")
    panel = page.get_by_test_id("similar-panel")
    items = panel.get_by_test_id("similar-item")
    items.first.wait_for()
    assert items.count() == len(CLUSTER)  # every other queued item; not the item itself
    rows = [(i.get_attribute("data-sample-id"), float(i.get_attribute("data-similarity")),
             i.get_by_test_id("similar-check").is_checked()) for i in items.all()]
    assert target not in {sid for sid, _, _ in rows}
    assert [sim for _, sim, _ in rows] == sorted((sim for _, sim, _ in rows), reverse=True)
    # Pre-checked: exactly those at or above the default threshold, 0.8.
    assert all(checked == (sim >= 0.8) for _, sim, checked in rows), rows
    assert any(checked for _, _, checked in rows), "a paraphrase should be ≥ 0.8 similar"
    shot(page, "similar")
    # Uncheck the most similar one, check the least similar (the unrelated text).
    items.first.get_by_test_id("similar-check").uncheck()
    items.last.get_by_test_id("similar-check").check()
    picked = {sid for sid, _, checked in rows[1:-1] if checked} | {rows[-1][0]}
    left_out = {sid for sid, _, _ in rows} - picked

    with page.expect_request(lambda r: r.url.endswith("/review/annotations")) as req:
        page.keyboard.press(KEY["billing"])
    sent = req.value.post_data_json["annotations"]
    results = req.value.response().json()["results"]
    assert all(r["status"] == 200 for r in results), results
    assert {a["sampleId"] for a in sent} == picked | {target}
    assert {a["labelId"] for a in sent} == {ids["billing"]}
    wait_moved_on(page, target)
    for sid in picked | {target}:
        wait_for(lambda sid=sid: annotation(stack, fid, sid) == ids["billing"],
                 what=f"{sid} annotated")
    assert all(annotation(stack, fid, sid) is None for sid in left_out)
    # The labelled neighbours are gone from the page's queue too.
    assert current_id(page) not in picked
    assert stack.wait_idle(timeout=60)  # the retrain the annotations queued


def test_an_undone_dismiss_is_never_sent_and_a_pending_one_survives_leaving(stack, page):
    fid = seeded(stack, "dismiss", TRAFFIC[:4])
    dismissed: list[str] = []
    page.on("request", lambda r: dismissed.append(r.url) if r.url.endswith("/dismiss") else None)
    sign_in(page, stack)
    open_review(page, stack, fid)

    kept = current_id(page)
    page.keyboard.press("d")
    toast = page.get_by_test_id("toast")
    assert "u to undo" in toast.inner_text()
    after = wait_moved_on(page, kept)
    page.keyboard.press("u")
    assert wait_moved_on(page, after) == kept
    page.keyboard.press("s")  # the next action: a dismiss still held back would go now
    gone = wait_moved_on(page, kept)
    page.keyboard.press("d")
    wait_moved_on(page, gone)
    with page.expect_request(lambda r: r.url.endswith(f"/review/{gone}/dismiss")):
        page.keyboard.press("s")
    assert not [u for u in dismissed if kept in u]
    queue = lambda: {s["id"] for s in stack.client.review_queue(fid)}  # noqa: E731
    wait_for(lambda: gone not in queue(), what="the dismiss")
    assert kept in queue()

    # Dismissed, then the tab goes away before the delay: pagehide sends it (keepalive).
    last = current_id(page)
    page.keyboard.press("d")
    assert wait_moved_on(page, last) is None  # the other items were skipped
    page.get_by_test_id("review-empty").wait_for()
    page.goto("about:blank")
    wait_for(lambda: last not in queue(), what="the dismiss sent on pagehide")
    assert kept in queue()


def test_label_keys_can_be_remapped_per_function_and_sleep_while_typing(stack, page):
    fid = seeded(stack, "keys", TRAFFIC[:3])
    ids = label_ids(stack, fid)
    annotating: list[str] = []
    page.on("request", lambda r: annotating.append(r.url)
            if r.url.endswith("/review/annotations") else None)
    sign_in(page, stack)
    open_review(page, stack, fid)
    page.get_by_text("Key mapping").click()
    page.get_by_test_id("key-select-1").select_option(label="feature_request")
    first_button = page.get_by_test_id("label-button").first
    assert first_button.inner_text().split() == ["1", "feature_request"]

    # Typing a digit into a field is typing, not labelling.
    target = current_id(page)
    page.keyboard.press("f")
    field = page.get_by_test_id("similar-threshold")
    field.click()
    page.keyboard.press("1")
    page.keyboard.press("s")
    assert current_id(page) == target and not annotating
    page.get_by_test_id("review-text").click()  # out of the field
    page.keyboard.press("1")
    wait_moved_on(page, target)
    wait_for(lambda: annotation(stack, fid, target) == ids["feature_request"],
             what="labelled through the remapped key")

    # The mapping is kept for this function.
    page.reload()
    page.get_by_test_id("review-item").wait_for()
    assert page.get_by_test_id("key-select-1").input_value() == ids["feature_request"]
    assert page.evaluate(f"localStorage.getItem('labelloop.keys.{fid}')") is not None
    assert stack.wait_idle(timeout=60)


# -- suspected mislabels -----------------------------------------------------------------

def with_flipped_labels(stack, name: str) -> str:
    """A function trained once on TEXTS with the FLIPPED ones mislabelled."""
    client = stack.client
    fid = flipped_function(client, name)
    client.train(fid)
    wait_for(lambda: client.get_function(fid).get("liveModelVersion") is not None, timeout=90,
             what="the first model")
    assert stack.wait_idle(timeout=90)
    return fid


def test_suspected_mislabels_tab_keeps_relabels_undoes_and_deletes(stack, page):
    fid = with_flipped_labels(stack, "suspects")
    client = stack.client
    ids = label_ids(stack, fid)
    key = {name: str(i + 1) for i, name in enumerate(sorted(SUSPECT_LABELS))}
    truth = {text: label for label, texts in TEXTS.items() for text in texts}
    queue = client.review_queue(fid, "suspect")
    assert {q["data"] for q in queue[:3]} == set(FLIPPED)

    sign_in(page, stack)
    page.goto(f"{stack.url}/console/#/functions/{fid}/review")
    tab = page.get_by_test_id("strategy-tab-suspect")
    assert tab.inner_text().startswith("Suspected mislabels")
    tab.click()
    page.get_by_test_id("suspect-line").wait_for()
    page.wait_for_selector(f'[data-testid=review-left][data-count="{len(queue)}"]')
    assert tab.get_by_text(str(len(queue))).is_visible()
    shot(page, "suspects")

    def shown() -> tuple[str, str]:
        return current_id(page), page.get_by_test_id("review-text").inner_text()

    # The most doubtful first, with what it is annotated and what the model says instead.
    first, text = shown()
    assert first == queue[0]["id"] and text in FLIPPED
    kept_label = FLIPPED[text]
    line = page.get_by_test_id("suspect-line").inner_text()
    assert re.fullmatch(rf"annotated {FLIPPED[text]} \(0\.\d\d\) · model says {truth[text]} "
                        r"\(0\.\d\d\)", line), line
    assert "Delete" in page.get_by_test_id("dismiss").inner_text()
    assert page.get_by_test_id("similar-button").count() == 0

    page.keyboard.press("k")  # its label is right after all
    second = wait_moved_on(page, first)
    page.wait_for_selector(f'[data-testid=review-left][data-count="{len(queue) - 1}"]')
    wait_for(lambda: client.get_sample(fid, first).get("kept") is True, what="kept")

    # Relabelled to what the model says.
    _, text = shown()
    assert text in FLIPPED
    relabelled = truth[text]
    page.keyboard.press(key[relabelled])
    third = wait_moved_on(page, second)
    wait_for(lambda: annotation(stack, fid, second) == ids[relabelled], what="relabelled")

    # A relabel undone puts the old label back (it does not clear it); then deleted.
    _, text = shown()
    assert text in FLIPPED
    page.keyboard.press(key[truth[text]])
    wait_moved_on(page, third)
    wait_for(lambda: annotation(stack, fid, third) == ids[truth[text]], what="third relabelled")
    page.keyboard.press("u")
    page.locator(f'[data-testid=review-item][data-sample-id="{third}"]').wait_for()
    wait_for(lambda: annotation(stack, fid, third) == ids[FLIPPED[text]],
             what="the old label back")
    page.keyboard.press("d")
    assert "Deleted" in page.get_by_test_id("toast").inner_text()

    def deleted() -> bool:
        try:
            client.get_sample(fid, third)
        except ApiError as err:
            return err.status == 404
        return False

    wait_for(deleted, what="the delete (sent after a few seconds)")
    kept = client.get_sample(fid, first)
    assert kept["kept"] is True and kept["annotation"]["labelId"] == ids[kept_label]
    assert client.get_sample(fid, second)["annotation"]["labelId"] == ids[relabelled]
    assert not {first, second, third} & {q["id"] for q in client.review_queue(fid, "suspect")}
    assert stack.wait_idle(timeout=90)  # the retrain the relabels queued

    # Nothing trained, nothing suspected.
    untrained = client.create_function("no suspects yet")["id"]
    page.goto(f"{stack.url}/console/#/functions/{untrained}/review")
    page.get_by_test_id("strategy-tab-suspect").click()
    assert "No suspected mislabels" in page.get_by_test_id("review-empty").inner_text()
    assert page.get_by_test_id("review-left").get_attribute("data-count") == "0"


# -- samples and try-it ------------------------------------------------------------------

def test_samples_browser_filters_pages_and_try_it_does_not_capture(stack, page):
    fid = seeded(stack, "samples", TRAFFIC)
    client = stack.client
    client.create_sample(fid, "Where can I change my billing address?", "billing",
                         external_id="crm-4711")
    assert stack.wait_idle(timeout=60)  # its retrain, so that try-it and the API agree
    total = len(SAMPLES) + len(TRAFFIC) + 1
    assert total > 25  # more than the default page
    sign_in(page, stack)
    page.goto(f"{stack.url}/console/#/functions/{fid}/samples")
    rows = page.get_by_test_id("sample-row")
    rows.first.wait_for()
    assert rows.count() == 25
    first_page = {r.get_attribute("data-sample-id") for r in rows.all()}

    text = "I got two charges for one order, please refund one"
    expected = client.invoke(fid, text, capture=False)
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Classify").click()
    assert page.get_by_test_id("try-label").inner_text() == expected["labelName"]
    assert page.get_by_test_id("try-confidences").locator("tr").count() == len(LABELS)
    shot(page, "samples")

    page.get_by_test_id("next-page").click()
    page.get_by_text("Page 2").wait_for()
    second_page = {r.get_attribute("data-sample-id") for r in rows.all()}
    assert len(second_page) == total - 25 and not first_page & second_page
    assert page.get_by_test_id("next-page").count() == 0

    page.get_by_label("Origin").select_option("InvokeCapture")
    page.get_by_label("Page size").select_option("100")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=sample-row]').length === n",
        arg=len(TRAFFIC))
    assert {r.get_attribute("data-origin") for r in rows.all()} == {"InvokeCapture"}
    assert {r.locator("td").first.inner_text() for r in rows.all()} == set(TRAFFIC)

    page.get_by_label("Origin").select_option("")
    page.get_by_label("External id").fill("crm-4711")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=sample-row]').length === 1")
    assert "change my billing address" in rows.first.inner_text()
    assert rows.first.get_by_test_id("sample-annotation").inner_text() == "billing"

    # Trying it out stored nothing: no sample, no capture.
    assert stack.wait_idle(timeout=30)
    assert text not in {s["data"] for s in client.samples(fid)}


def test_try_it_on_a_function_without_a_model_shows_the_409(stack, page):
    fid = stack.client.create_function("untrained")["id"]
    sign_in(page, stack)
    page.goto(f"{stack.url}/console/#/functions/{fid}/samples")
    page.get_by_test_id("samples-list").get_by_text("No samples match").wait_for()
    page.get_by_label("Text", exact=True).fill("anything")
    page.get_by_role("button", name="Classify").click()
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert re.search(r"no model", banner.inner_text(), re.I), banner.inner_text()
    page.goto(f"{stack.url}/console/#/functions/{fid}")
    page.get_by_test_id("models-card").get_by_text("No model yet").wait_for()
    assert page.get_by_test_id("training-indicator").inner_text() == "No model yet"


# -- errors and the session --------------------------------------------------------------

def test_a_function_made_in_the_console_and_api_errors_in_the_banner(stack, page):
    sign_in(page, stack)
    page.get_by_label("New function").fill("made in the console")
    page.get_by_label("Encoder").select_option("accurate")
    page.get_by_role("button", name="Create").click()
    page.get_by_test_id("function-name").get_by_text("made in the console").wait_for()
    fid = re.search(r"#/functions/(function_[a-z0-9]+)$", page.url).group(1)
    made = stack.client.get_function(fid)
    assert (made["name"], made["encoder"]) == ("made in the console", "accurate")
    assert page.get_by_test_id("function-encoder").inner_text() == "accurate encoder"
    page.get_by_test_id("labels-card").get_by_text("No labels yet").wait_for()
    page.get_by_label("Name", exact=True).fill("billing")
    page.get_by_test_id("add-label").click()
    page.get_by_test_id("labels-table").wait_for()
    banner = page.get_by_role("alert")
    assert not banner.is_visible()

    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_test_id("add-label").click()
    banner.wait_for()
    assert "name: must not be empty" in banner.inner_text()

    page.get_by_label("Dismiss error").click()
    assert not banner.is_visible()
    page.get_by_label("Name", exact=True).fill("billing")
    page.get_by_test_id("add-label").click()
    banner.wait_for()
    assert "a label named 'billing' exists" in banner.inner_text()
    assert page.get_by_test_id("label-row").count() == 1

    page.get_by_label("Name", exact=True).fill("bug")
    page.get_by_test_id("add-label").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=label-row]').length === 2")
    assert {lb["name"] for lb in stack.client.list_labels(fid)} == {"billing", "bug"}


def test_a_bad_token_lands_on_sign_in_with_the_expired_message(stack, page):
    fid = stack.client.create_function("session")["id"]
    sign_in(page, stack)
    page.goto(f"{stack.url}/console/#/functions/{fid}")
    page.get_by_test_id("function-name").get_by_text("session").wait_for()
    page.evaluate("sessionStorage.setItem('labelloop.token', 'not-a-token')")
    page.reload()
    page.get_by_test_id("session-expired").wait_for()
    assert "Your session expired, sign in again" in page.get_by_test_id(
        "session-expired").inner_text()
    assert page.evaluate("sessionStorage.getItem('labelloop.token')") is None
    assert page.url.endswith("#/signin")
    # Signing in again goes back to where the session ended.
    page.get_by_label("Client id").fill(stack.client_id)
    page.get_by_label("Client secret").fill(stack.client_secret)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("function-name").get_by_text("session").wait_for()
    assert page.url.endswith(f"#/functions/{fid}")

    # Wrong credentials: the API's answer in the banner, and no session.
    page.get_by_test_id("signout").click()
    page.get_by_test_id("signin-page").wait_for()
    assert page.get_by_test_id("session-expired").count() == 0
    page.get_by_label("Client id").fill(stack.client_id)
    page.get_by_label("Client secret").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text().startswith("Sign-in failed")
    assert page.evaluate("sessionStorage.getItem('labelloop.token')") is None


# -- label quality and the decision policy -----------------------------------------------

def test_threshold_page_drags_the_threshold_and_saves_it_as_the_policy(stack, page):
    client = stack.client
    fid = trained_function(stack, client, "thresholds", LABELS, SAMPLES)
    ids = label_ids(stack, fid)
    live = client.get_function(fid)["liveModelVersion"]
    quality = client.request("GET", f"/v1/functions/{fid}/models/{live}")["quality"]
    sign_in(page, stack)

    # The overview: one bar per label, worst first, and the confusion matrix cell by cell.
    page.goto(f"{stack.url}/console/#/functions/{fid}")
    card = page.get_by_test_id("quality-card")
    bars = card.get_by_test_id("label-accuracy-bar")
    bars.first.wait_for()
    assert bars.count() == len(LABELS)
    assert {b.get_attribute("data-label-id") for b in bars.all()} == set(ids.values())
    recalls = [float(b.get_attribute("data-recall")) for b in bars.all()]
    assert recalls == sorted(recalls)
    recall = {q["labelId"]: q["recall"] for q in quality["perLabel"]}
    assert all(float(b.get_attribute("data-recall")) == recall[b.get_attribute("data-label-id")]
               for b in bars.all())
    order = quality["confusion"]["labelIds"]
    counts = {(order[i], order[j]): n for i, j, n in quality["confusion"]["cells"]}
    cells = card.get_by_test_id("confusion-heatmap").get_by_test_id("confusion-cell")
    assert cells.count() == len(LABELS) ** 2
    shown = {(c.get_attribute("data-true"), c.get_attribute("data-predicted")):
             int(c.get_attribute("data-count")) for c in cells.all()}
    assert shown == {(a, b): counts.get((a, b), 0) for a in ids.values() for b in ids.values()}
    assert card.get_by_test_id("confused-pair").count() == len(quality["confusedPairs"])
    near = page.locator("[data-testid=capture-strategy][data-strategy=near_threshold]")
    assert "Near threshold" in near.inner_text()
    shot(page, "overview-quality")

    # The thresholds tab: drag the handle with the mouse.
    page.get_by_test_id("tab-thresholds").click()
    handle = page.get_by_test_id("threshold-handle")
    readout = page.get_by_test_id("threshold-readout")
    handle.wait_for()
    report = client.request("GET", f"/v1/functions/{fid}/thresholds")
    curve = report["overall"]["curve"]
    assert page.get_by_test_id("target-precision").input_value() == str(report["targetPrecision"])
    assert page.get_by_test_id("thresholds-table").locator("tbody tr").count() == len(LABELS)
    start, text_before = float(handle.get_attribute("data-threshold")), readout.inner_text()
    plot = page.get_by_test_id("threshold-plot").bounding_box()
    knob = handle.locator("circle").bounding_box()
    x, y = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 0.3 * plot["width"] * (1 if start < 0.6 else -1), y + 40, steps=8)
    page.mouse.up()
    dragged = float(handle.get_attribute("data-threshold"))
    assert abs(dragged - start) > 0.2 and readout.inner_text() != text_before

    def matches_curve(t: float) -> None:
        i = min(range(len(curve["threshold"])), key=lambda k: abs(curve["threshold"][k] - t))
        assert abs(curve["threshold"][i] - t) < 1e-9, "the handle snaps to the curve's grid"
        assert readout.get_attribute("data-threshold") == handle.get_attribute("data-threshold")
        assert int(readout.get_attribute("data-covered")) == curve["covered"][i]
        assert int(readout.get_attribute("data-total")) == curve["total"]
        precision, shown = curve["precision"][i], readout.get_attribute("data-precision")
        assert shown == "" if precision is None else float(shown) == precision
        assert f"{curve['covered'][i]} of {curve['total']} covered" in readout.inner_text()

    matches_curve(dragged)
    # By keyboard: one grid step.
    handle.focus()
    page.keyboard.press("ArrowRight")
    value = handle.get_attribute("data-threshold")
    assert round(float(value) - dragged, 6) == 0.005
    matches_curve(float(value))

    # Saved as the policy: the API has it, and invokes are now told the threshold.
    page.get_by_test_id("save-policy").click()
    summary = page.get_by_test_id("policy-summary")
    summary.get_by_test_id("applied-table").wait_for()
    assert value in summary.get_by_test_id("policy-accept").inner_text()
    applied = summary.get_by_test_id("applied-row")
    assert {r.get_attribute("data-accept") for r in applied.all()} == {value}
    policy = client.request("GET", f"/v1/functions/{fid}/thresholds")["policy"]
    assert policy["accept"] == {"confidence": float(value)}
    answer = wait_for(lambda: (a := client.invoke(fid, TRAFFIC[0])).get("decisionThreshold")
                      is not None and a, what="an invoke with a decision")
    assert answer["decisionThreshold"] == float(value)
    assert answer["decision"] == ("accept" if answer["confidence"] >= float(value) else "review")
    shot(page, "thresholds")

    # One label's curve: its own numbers, and saving adds an override for that label only.
    page.get_by_test_id("label-select").select_option(label="billing")
    page.get_by_test_id("recommendation").get_by_text("billing").first.wait_for()
    billing = client.request("GET", f"/v1/functions/{fid}/thresholds",
                             query={"label": ids["billing"]})["label"]["curve"]
    page.wait_for_selector(f"[data-testid=threshold-readout][data-total=\"{billing['total']}\"]")
    page.get_by_test_id("save-policy").click()
    summary.locator("dt", has_text="billing").wait_for()
    policy = client.request("GET", f"/v1/functions/{fid}/thresholds")["policy"]
    assert policy["accept"] == {"confidence": float(value)}
    assert policy["perLabel"] == {ids["billing"]: {"accept": {"confidence": float(value)}}}

    page.get_by_test_id("clear-policy").click()
    summary.get_by_text("No policy").wait_for()
    assert client.request("GET", f"/v1/functions/{fid}/thresholds")["policy"] is None


# -- drift -------------------------------------------------------------------------------

def drift_body(version: int, label_id: str, *, flagged: bool) -> dict:
    """A `GET .../drift` answer as the API shapes it: a scored version, flagged or not."""
    def counts(invokes: int, novel: float) -> dict:
        return {"invokes": invokes, "novelShare": novel, "confidenceBins": [0] * 9 + [invokes],
                "labels": [{"labelId": label_id, "count": invokes}]}
    signals = ({"labels": 0.3, "confidence": 0.8, "novelty": 0.9} if flagged
               else {"labels": 0.01, "confidence": 0.0, "novelty": 0.031})
    return {"modelVersion": version, "score": max(signals.values()), "flagged": flagged,
            "signals": signals, "reference": counts(1000, 0.004),
            "recent": counts(500, 0.12 if flagged else 0.006),
            "settings": {"threshold": 0.25, "referenceInvokes": 1000, "windowInvokes": 500,
                         "novelCosine": 0.5, "flushInvokes": 100, "flushSeconds": 60},
            "days": [{"date": "2026-12-05", **counts(1100, 0.004)},
                     {"date": "2026-12-06", **counts(400, 0.12)}]}


def test_overview_drift_card_waits_for_traffic_then_shows_the_report(stack, page):
    client = stack.client
    fid = trained_function(stack, client, "drift", LABELS, SAMPLES)
    live = client.get_function(fid)["liveModelVersion"]
    report = client.request("GET", f"/v1/functions/{fid}/drift")
    assert (report["modelVersion"], report["score"], report["days"]) == (live, None, [])
    sign_in(page, stack)

    # No invokes yet: the card says what it waits for.
    page.goto(f"{stack.url}/console/#/functions/{fid}")
    card = page.get_by_test_id("drift")
    status = card.get_by_test_id("drift-status")
    status.wait_for()
    assert status.get_attribute("data-state") == "waiting"
    assert status.inner_text() == (
        "Not enough traffic yet: the reference is the first 1,000 invokes of the live version "
        f"(v{live}), then 500 more.")
    assert card.get_by_test_id("drift-progress").inner_text().startswith(
        "No invokes counted yet.")
    assert card.get_by_test_id("drift-days").count() == 0
    assert page.get_by_test_id("drift-pill").count() == 0

    # Flagged and settled reports, without thousands of invokes: the module's stack is shared
    # (its drift settings fixed), so the page gets its answer from the route instead (the
    # endpoint itself is the API tests' business).
    label = label_ids(stack, fid)["billing"]
    served = {"body": drift_body(live, label, flagged=True)}
    page.route("**/v1/functions/*/drift", lambda route: route.fulfill(json=served["body"]))
    page.reload()
    page.wait_for_selector("[data-testid=drift-status][data-state=flagged]")
    assert status.inner_text() == (
        f"Drift: the traffic no longer looks like the first 1,000 invokes of model v{live} "
        "(score 0.9 ≥ 0.25): labels 0.3, confidence 0.8, novel inputs 0.9. "
        "Random capture samples twice as often until it settles.")
    assert page.get_by_test_id("drift-pill").inner_text() == f"Drift on v{live}"
    assert card.get_by_test_id("drift-novel").inner_text() == (
        "Novel inputs (no training sample within cosine 0.5): 12.0% recently vs 0.4% "
        "in the reference")
    days = card.get_by_test_id("drift-day")
    assert [d.get_attribute("data-date") for d in days.all()] == ["2026-12-05", "2026-12-06"]
    assert [d.locator("td").nth(1).inner_text() for d in days.all()] == ["1,100", "400"]
    assert days.nth(1).locator("td").last.inner_text() == "12.0%"
    shot(page, "overview-drift")

    served["body"] = drift_body(live, label, flagged=False)
    page.reload()
    page.wait_for_selector("[data-testid=drift-status][data-state=ok]")
    assert status.inner_text() == "No drift (score 0.03, threshold 0.25)"
    assert page.get_by_test_id("drift-pill").count() == 0
    assert card.get_by_test_id("drift-signals").inner_text() == (
        "labels 0.01 · confidence 0 · novel inputs 0.03")
