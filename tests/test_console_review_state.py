"""The review queue's state machine (functions/labelloop/console/review_state.js) in Chromium,
event by event: the module loaded as the console loads it, an ES module from /console/, with
nothing else on the page and no server behind it (every answer is an event the test sends).
The page that draws it and carries out its effects is tested end to end in test_console.py."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from conftest import ROOT

CONSOLE = ROOT / "functions" / "labelloop" / "console"
ORIGIN = "http://console.test"

# Runs `events` from a fresh state; per step: the state as ids, the effects, the fields whose
# identity changed (the page redraws on those), and whether the step changed its input.
DRIVE = """async ({ events, threshold }) => {
  const m = await import('/console/review_state.js');
  const ids = (set) => [...set].sort();
  const view = (s) => ({
    current: m.current(s)?.id ?? null,
    queue: s.queue.map((i) => i.id),
    hidden: ids(s.hidden),
    skipped: ids(s.skipped),
    history: s.history.map((e) => (e.kind === 'annotate'
      ? { kind: e.kind, id: e.item.id, ids: e.ids, labelId: e.labelId,
          ...(e.restore ? { restore: e.restore } : {}) }
      : { kind: e.kind, id: e.item.id })),
    pending: s.pending?.id ?? null,
    writes: s.writes.map((w) => ({ kind: w.kind, ids: w.ids })),
    busy: m.busy(s),
    loaded: s.loaded,
    strategy: s.strategy,
    similar: s.similar && { for: s.similar.for, loading: s.similar.loading,
                            items: s.similar.items.map((x) => x.id) },
    checked: ids(s.checked),
    threshold: s.threshold,
  });
  let s = m.initialState(threshold);
  return events.map((event) => {
    const before = s;
    const seen = JSON.stringify(view(before));
    const out = m.step(before, event);
    s = out.state;
    return {
      state: view(s),
      effects: out.effects,
      changed: Object.keys(s).filter((k) => s[k] !== before[k]).sort(),
      mutated: JSON.stringify(view(before)) !== seen,
    };
  });
}"""

KEYS = """async ({ keys, similarOpen, queue = [] }) => {
  const m = await import('/console/review_state.js');
  const similar = similarOpen ? { for: 'a', loading: true, items: [] } : null;
  const s = { ...m.initialState(0.8), similar, queue };
  return Object.fromEntries(keys.map((k) => [k, m.keyCommand(s, k, ['L1', '', 'L3'])]));
}"""

# The state fields review.js draws from (its DRAWN): a step that changes none redraws nothing.
DRAWN = {"queue", "hidden", "skipped", "loaded", "strategy", "similar", "threshold"}

START, SKIP, DISMISS, UNDO = ({"type": t} for t in ("start", "skip", "dismiss", "undo"))
COMMIT, SIMILAR, FAILED = ({"type": t} for t in ("commitDismiss", "toggleSimilar", "writeFailed"))
COUNTS, START_TIMER, STOP_TIMER = {"type": "counts"}, {"type": "startTimer"}, {"type": "stopTimer"}
HIDE_TOAST, UNDO_TOAST = {"type": "hideToast"}, {"type": "undoToast"}
KEEP, SUSPECT = {"type": "keep"}, {"type": "strategy", "name": "suspect"}


def loaded(*ids: str) -> dict:
    return {"type": "loaded", "items": [{"id": i, "data": f"text of {i}"} for i in ids]}


def suspect(i: str, old: str = "OLD", model: str = "NEW") -> dict:
    """An item of the suspect queue: annotated `old`, the model says `model`."""
    return {"id": i, "data": f"text of {i}", "annotation": {"labelId": old},
            "suspect": {"annotatedLabelId": old, "annotatedConfidence": 0.1, "labelId": model,
                        "confidence": 0.9, "margin": 0.8, "modelVersion": 1}}


def suspects(*ids: str) -> dict:
    return {"type": "loaded", "items": [suspect(i) for i in ids]}


def annotate(label: str = "L1") -> dict:
    return {"type": "annotate", "labelId": label}


def written(*ok: str, failed: dict[str, str] | None = None) -> dict:
    """The answer to the write in flight (a clear's carries no results)."""
    results = [{"sampleId": i, "status": 200} for i in ok]
    results += [{"sampleId": i, "status": 409, "message": m} for i, m in (failed or {}).items()]
    return {"type": "written", "results": results}


def found(for_id: str, **similarity: float) -> dict:
    return {"type": "similarFound", "for": for_id,
            "items": [{"id": i, "data": i, "similarity": s} for i, s in similarity.items()]}


def fetch(batch_size: int, strategy: str = "") -> dict:
    return {"type": "fetch", "strategy": strategy, "batchSize": batch_size}


def toast(say: str, **more) -> dict:
    return {"type": "toast", "say": say, **more}


@pytest.fixture
def run(page):
    """run(*events) → the steps; the module is served from the console's directory."""
    def serve(route):
        path = urlparse(route.request.url).path
        file = CONSOLE / path.removeprefix("/console/")
        if path == "/":
            route.fulfill(content_type="text/html", body="<!doctype html><title>state</title>")
        elif path.startswith("/console/") and file.is_file():
            route.fulfill(path=file, content_type="text/javascript")
        else:
            route.fulfill(status=404)

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")

    def run(*events: dict, threshold: float = 0.8) -> list[dict]:
        steps = page.evaluate(DRIVE, {"events": list(events), "threshold": threshold})
        assert not [s for s in steps if s["mutated"]], "a step changed the state it was given"
        return steps

    run.page = page
    return run


# -- the queue -----------------------------------------------------------------------------

def test_the_first_batch_is_a_page_and_shows_in_the_servers_order(run):
    start, first = run(START, loaded("a", "b", "c"))
    assert start["effects"] == [fetch(50)]
    assert not start["state"]["loaded"] and start["state"]["current"] is None
    assert first["state"]["loaded"] and first["state"]["queue"] == ["a", "b", "c"]
    assert first["state"]["current"] == "a" and first["effects"] == []


def test_annotate_moves_on_and_posts_the_label_and_its_success_redraws_nothing(run):
    *_, labelled, ok = run(START, loaded("a", "b"), annotate("L2"), written("a"))
    assert labelled["state"]["current"] == "b"
    assert labelled["effects"] == [toast("labelled", count=1, labelId="L2"),
                                   {"type": "annotate", "ids": ["a"], "labelId": "L2"}]
    assert labelled["state"]["busy"]
    assert labelled["state"]["history"] == [{"kind": "annotate", "id": "a", "ids": ["a"],
                                             "labelId": "L2"}]
    assert ok["effects"] == [COUNTS] and not ok["state"]["busy"]
    assert ok["state"]["current"] == "b"
    assert not DRAWN & set(ok["changed"]), ok["changed"]


def test_a_label_key_without_a_label_or_without_an_item_does_nothing(run):
    empty_key, too_early = run(annotate(""), annotate())
    for step in (empty_key, too_early):
        assert step["effects"] == [] and step["changed"] == []
    *_, unmapped = run(loaded("a"), annotate(""))
    assert unmapped["state"]["current"] == "a" and unmapped["effects"] == []


def test_writes_go_one_at_a_time_in_order(run):
    *_, first, second, done, last = run(loaded("a", "b", "c"), annotate("L1"), annotate("L2"),
                                        written("a"), written("b"))
    assert first["effects"][-1] == {"type": "annotate", "ids": ["a"], "labelId": "L1"}
    # The second waits for the first's answer.
    assert second["effects"] == [toast("labelled", count=1, labelId="L2")]
    assert second["state"]["writes"] == [{"kind": "annotate", "ids": ["a"]},
                                         {"kind": "annotate", "ids": ["b"]}]
    assert done["effects"] == [COUNTS, {"type": "annotate", "ids": ["b"], "labelId": "L2"}]
    assert last["effects"] == [COUNTS] and not last["state"]["busy"]


def test_a_failed_post_shows_the_item_again_with_nothing_to_undo(run):
    *_, failed, undo = run(loaded("a", "b"), annotate(), FAILED, UNDO)
    assert failed["state"]["current"] == "a"
    assert failed["state"]["hidden"] == [] and failed["state"]["history"] == []
    assert failed["effects"] == [COUNTS]
    assert undo["effects"] == [toast("nothingToUndo")] and undo["changed"] == []


def test_a_failed_write_lets_the_next_one_go(run):
    *_, failed = run(loaded("a", "b", "c"), annotate("L1"), annotate("L2"), FAILED)
    assert failed["effects"] == [COUNTS, {"type": "annotate", "ids": ["b"], "labelId": "L2"}]
    assert failed["state"]["current"] == "a"  # a is back; b stays labelled


def three_at_once(run, *more: dict) -> list[dict]:
    """a labelled together with b and c (both checked in the similar panel), then `more`."""
    return run(loaded("a", "b", "c", "d"), SIMILAR, found("a", b=0.9, c=0.9), annotate(), *more)


def test_items_the_server_did_not_label_show_again_and_are_not_cleared_on_undo(run):
    *_, posted, partly, undo = three_at_once(run, written("a", "b", failed={"c": "gone"}), UNDO)
    assert posted["effects"][-1] == {"type": "annotate", "ids": ["a", "b", "c"], "labelId": "L1"}
    assert posted["state"]["current"] == "d"
    assert partly["effects"] == [{"type": "notLabelled", "count": 1, "message": "gone"}, COUNTS]
    assert partly["state"]["current"] == "c" and partly["state"]["hidden"] == ["a", "b"]
    assert partly["state"]["history"][-1]["ids"] == ["a", "b"]
    assert undo["effects"] == [toast("labelRemoved", count=2), {"type": "clear", "ids": ["a", "b"]}]


def test_an_undo_waiting_behind_a_partly_failed_post_clears_only_what_it_labelled(run):
    *_, undo, partly = three_at_once(run, UNDO, written("b", failed={"a": "x", "c": "y"}))
    assert undo["effects"] == [toast("labelRemoved", count=3)]
    assert undo["state"]["current"] == "a"
    assert partly["effects"] == [{"type": "notLabelled", "count": 2, "message": "x"}, COUNTS,
                                 {"type": "clear", "ids": ["b"]}]


# -- undo ----------------------------------------------------------------------------------

def test_undo_of_an_annotation_shows_the_item_again_and_clears_it_after_its_post(run):
    *_, undo, posted, cleared = run(loaded("a", "b", "c"), annotate(), UNDO, written("a"),
                                    written())
    assert undo["state"]["current"] == "a" and undo["state"]["queue"] == ["a", "b", "c"]
    assert undo["state"]["history"] == []
    # The POST is still out: the DELETE waits for it.
    assert undo["effects"] == [toast("labelRemoved", count=1)]
    assert posted["effects"] == [COUNTS, {"type": "clear", "ids": ["a"]}]
    assert cleared["effects"] == [COUNTS] and not cleared["state"]["busy"]


def test_undo_after_the_post_clears_at_once_and_puts_the_item_back_in_front(run):
    # The refill after the last item no longer has it: undo brings it back all the same.
    *_, refilled, undo = run(loaded("a"), annotate(), written("a"), loaded("b", "c"), UNDO)
    assert refilled["state"]["queue"] == ["b", "c"]
    assert undo["state"]["queue"] == ["a", "b", "c"] and undo["state"]["current"] == "a"
    assert undo["effects"] == [toast("labelRemoved", count=1), {"type": "clear", "ids": ["a"]}]


def test_undo_of_a_skip_brings_the_item_back_without_a_request(run):
    *_, skipped, undone = run(loaded("a", "b"), SKIP, UNDO)
    assert skipped["state"]["current"] == "b" and skipped["state"]["skipped"] == ["a"]
    assert undone["state"]["current"] == "a"
    assert undone["state"]["skipped"] == [] and undone["state"]["hidden"] == []
    assert undone["effects"] == []


def test_undo_goes_back_one_action_at_a_time(run):
    *_, labelled, skipped, undo_skip, undo_label, nothing = run(
        loaded("a", "b", "c"), annotate(), SKIP, UNDO, UNDO, UNDO)
    assert (labelled["state"]["current"], skipped["state"]["current"]) == ("b", "c")
    assert undo_skip["state"]["current"] == "b" and undo_skip["effects"] == []
    assert undo_label["state"]["current"] == "a"
    assert undo_label["effects"] == [toast("labelRemoved", count=1)]  # behind the POST
    assert nothing["effects"] == [toast("nothingToUndo")]


# -- dismiss, held back ------------------------------------------------------------------

def test_a_dismiss_is_held_back_and_goes_with_the_next_action(run):
    *_, dismissed, skipped = run(loaded("a", "b", "c"), DISMISS, SKIP)
    assert dismissed["state"]["current"] == "b" and dismissed["state"]["pending"] == "a"
    assert dismissed["effects"] == [START_TIMER, UNDO_TOAST]
    assert skipped["effects"] == [STOP_TIMER, HIDE_TOAST, {"type": "dismiss", "id": "a"}]
    assert skipped["state"]["pending"] is None and skipped["state"]["current"] == "c"
    assert [e["kind"] for e in skipped["state"]["history"]] == ["dismissed", "skip"]


def test_an_undone_dismiss_is_never_sent(run):
    *_, undone, timer = run(loaded("a", "b"), DISMISS, UNDO, COMMIT)
    assert undone["state"]["current"] == "a" and undone["state"]["pending"] is None
    assert undone["effects"] == [STOP_TIMER, toast("dismissUndone")]
    assert timer["effects"] == [] and timer["changed"] == []


def test_a_sent_dismiss_cannot_be_undone_and_undo_then_reaches_the_action_before(run):
    *_, sent, refused, before = run(loaded("a", "b", "c"), SKIP, DISMISS, COMMIT, UNDO, UNDO)
    assert sent["effects"] == [STOP_TIMER, HIDE_TOAST, {"type": "dismiss", "id": "b"}]
    assert refused["effects"] == [toast("dismissSent")]
    assert refused["state"]["current"] == "c"
    assert before["state"]["current"] == "a" and before["state"]["hidden"] == ["b"]


def test_a_dismiss_that_fails_shows_the_item_again(run):
    *_, ok, failed = run(loaded("a", "b"), DISMISS, COMMIT, {"type": "dismissSent"},
                         {"type": "dismissFailed", "id": "a"})
    assert ok["effects"] == [COUNTS] and ok["state"]["current"] == "b"
    assert failed["state"]["current"] == "a"


# -- the end of the queue and refills ----------------------------------------------------

def test_the_end_of_the_queue_asks_for_more_past_what_is_hidden(run):
    *_, skipped, labelled, empty = run(loaded("a", "b"), SKIP, annotate(), loaded())
    assert skipped["effects"] == []  # b still to show
    assert labelled["state"]["current"] is None
    assert labelled["effects"][1] == fetch(52)  # the skipped and in-flight ones come back
    assert empty["state"]["current"] is None and empty["state"]["loaded"]
    assert empty["state"]["skipped"] == ["a"]


def test_a_refill_takes_the_servers_order_once_without_what_is_hidden(run):
    *_, refill, batch = run(loaded("a", "b"), SKIP, SKIP, loaded("b", "a", "c", "d"))
    assert refill["effects"] == [fetch(52)]
    assert batch["state"]["queue"] == ["b", "a", "c", "d"]  # no duplicates
    assert batch["state"]["current"] == "c"


def test_an_item_undone_while_the_refill_was_out_stays_in_front(run):
    # The POST landed first, so the server no longer has it in the batch.
    *_, refill, undone, batch = run(loaded("a"), annotate(), UNDO, loaded("b", "c"))
    assert refill["effects"][1] == fetch(51)
    assert undone["state"]["current"] == "a"
    assert batch["state"]["queue"] == ["a", "b", "c"] and batch["state"]["current"] == "a"


def test_an_item_back_on_the_page_and_in_the_batch_is_there_once_in_the_servers_order(run):
    *_, batch = run(loaded("a", "b"), SKIP, SKIP, UNDO, loaded("c", "b", "a"))
    assert batch["state"]["queue"] == ["c", "b", "a"]
    assert batch["state"]["current"] == "c" and batch["state"]["hidden"] == ["a"]


def test_the_skipped_ones_again(run):
    *_, empty, again = run(loaded("a", "b"), SKIP, SKIP, loaded("a", "b"),
                           {"type": "reviewSkipped"})
    assert empty["state"]["current"] is None and empty["state"]["skipped"] == ["a", "b"]
    assert again["state"]["current"] == "a" and again["state"]["skipped"] == []
    assert again["state"]["history"] == [] and again["effects"] == []  # no refill: a is there


def test_a_batch_for_the_strategy_left_meanwhile_is_dropped(run):
    *_, late, own = run(START, {"type": "strategy", "name": "suspect"},
                        {**loaded("a"), "strategy": ""}, {**suspects("s"), "strategy": "suspect"})
    assert late["changed"] == [] and not late["state"]["loaded"]
    assert own["state"]["queue"] == ["s"] and own["state"]["current"] == "s"


def test_another_strategy_sends_the_held_dismiss_and_fetches_its_own_queue(run):
    *_, switched, same = run(loaded("a", "b"), DISMISS, {"type": "strategy", "name": "random"},
                             {"type": "strategy", "name": "random"})
    assert switched["effects"] == [STOP_TIMER, HIDE_TOAST, {"type": "dismiss", "id": "a"},
                                   fetch(51, "random")]
    assert switched["state"]["queue"] == [] and not switched["state"]["loaded"]
    assert same["effects"] == [] and same["changed"] == []


# -- select similar ----------------------------------------------------------------------

def test_similar_items_go_along_when_checked_and_labelled_ones_never_show(run):
    *_, opened, shown, unticked, labelled = run(
        loaded("a", "b", "c", "d", "e"), annotate(), written("a"), SKIP, SIMILAR,
        # a was labelled, b skipped: the panel keeps b and drops a.
        found("c", b=0.95, a=0.9, d=0.85, e=0.5),
        {"type": "check", "id": "d", "on": False},
        annotate("L2"))
    assert opened["effects"] == [{"type": "similar", "id": "c"}]
    assert opened["state"]["similar"] == {"for": "c", "loading": True, "items": []}
    assert shown["state"]["similar"]["items"] == ["b", "d", "e"]
    assert shown["state"]["checked"] == ["b", "d"]  # at or above 0.8
    assert unticked["state"]["checked"] == ["b"]
    assert not DRAWN & set(unticked["changed"])  # the box shows itself: no redraw
    assert labelled["effects"][-1] == {"type": "annotate", "ids": ["c", "b"], "labelId": "L2"}
    assert labelled["state"]["similar"] is None and labelled["state"]["current"] == "d"


def test_the_threshold_checks_again_and_a_late_answer_is_dropped(run):
    *_, lowered, moved, late = run(loaded("a", "b", "c"), SIMILAR, found("a", b=0.7, c=0.4),
                                   {"type": "threshold", "value": 0.6}, SKIP, found("a", b=0.7))
    assert lowered["state"]["checked"] == ["b"] and lowered["state"]["threshold"] == 0.6
    assert moved["state"]["similar"] is None
    assert late["changed"] == []


def test_similar_toggles_and_a_failure_closes_it(run):
    *_, closed, again, failed = run(loaded("a"), SIMILAR, SIMILAR, SIMILAR,
                                    {"type": "similarFailed", "for": "a"})
    assert closed["state"]["similar"] is None and closed["effects"] == []
    assert again["effects"] == [{"type": "similar", "id": "a"}]
    assert failed["state"]["similar"] is None


# -- keys --------------------------------------------------------------------------------

def test_keys_stand_for_events(run):
    keys = ["1", "2", "3", "s", "d", "u", "f", "escape", "x", "0"]
    closed = run.page.evaluate(KEYS, {"keys": keys, "similarOpen": False})
    assert closed == {"1": {"type": "annotate", "labelId": "L1"},
                      "2": {"type": "annotate", "labelId": ""},
                      "3": {"type": "annotate", "labelId": "L3"},
                      "s": {"type": "skip"}, "d": {"type": "dismiss"}, "u": {"type": "undo"},
                      "f": {"type": "toggleSimilar"}, "escape": None, "x": None, "0": None}
    opened = run.page.evaluate(KEYS, {"keys": ["escape"], "similarOpen": True})
    assert opened == {"escape": {"type": "closeSimilar"}}


# -- suspected mislabels -------------------------------------------------------------------

def test_a_relabelled_suspect_is_undone_by_putting_its_old_label_back(run):
    tab, _, relabelled, posted, undo, restored = run(
        SUSPECT, suspects("a", "b"), annotate("NEW"), written("a"), UNDO, written("a"))
    assert tab["effects"] == [fetch(50, "suspect")]
    assert relabelled["state"]["current"] == "b"
    assert relabelled["effects"] == [toast("relabelled", count=1, labelId="NEW"),
                                     {"type": "annotate", "ids": ["a"], "labelId": "NEW"}]
    assert relabelled["state"]["history"] == [{"kind": "annotate", "id": "a", "ids": ["a"],
                                               "labelId": "NEW", "restore": "OLD"}]
    assert posted["effects"] == [COUNTS]
    # Not cleared: the old label is written again.
    assert undo["state"]["current"] == "a" and undo["state"]["history"] == []
    assert undo["effects"] == [toast("labelRestored", count=1, labelId="OLD"),
                               {"type": "annotate", "ids": ["a"], "labelId": "OLD"}]
    assert undo["state"]["writes"] == [{"kind": "restore", "ids": ["a"]}]
    assert restored["effects"] == [COUNTS] and not restored["state"]["busy"]


def test_a_relabel_undone_before_its_post_answered_restores_after_it(run):
    *_, undo, posted, restored = run(suspects("a", "b"), annotate("NEW"), UNDO, written("a"),
                                     written("a"))
    assert undo["effects"] == [toast("labelRestored", count=1, labelId="OLD")]
    assert posted["effects"] == [COUNTS, {"type": "annotate", "ids": ["a"], "labelId": "OLD"}]
    assert restored["effects"] == [COUNTS]


def test_a_relabel_the_server_refused_is_not_restored(run):
    *_, refused = run(suspects("a", "b"), annotate("NEW"), UNDO, written(failed={"a": "gone"}))
    # The restore waiting behind it has nothing left to write.
    assert refused["effects"] == [{"type": "notLabelled", "count": 1, "message": "gone"}, COUNTS]
    assert refused["state"]["writes"] == [] and refused["state"]["current"] == "a"
    *_, failed = run(suspects("a"), annotate("NEW"), written("a"), UNDO,
                     written(failed={"a": "deleted meanwhile"}))
    assert failed["effects"] == [{"type": "notRestored", "count": 1,
                                  "message": "deleted meanwhile"}, COUNTS]


def test_keep_hides_the_suspect_and_its_undo_only_shows_it_again(run):
    *_, kept, done, undo, relabelled = run(suspects("a", "b"), KEEP, written(), UNDO,
                                           annotate("NEW"))
    assert kept["state"]["current"] == "b" and kept["state"]["hidden"] == ["a"]
    assert kept["effects"] == [toast("kept", labelId="OLD"), {"type": "keep", "id": "a"}]
    assert kept["state"]["history"] == [{"kind": "keep", "id": "a"}]
    assert kept["state"]["writes"] == [{"kind": "keep", "ids": ["a"]}]
    assert done["effects"] == [COUNTS] and not done["state"]["busy"]
    # Nothing unkeeps on the server: the item is back, to be relabelled if need be.
    assert undo["state"]["current"] == "a" and undo["state"]["hidden"] == []
    assert undo["effects"] == [toast("keepUndone")] and undo["state"]["history"] == []
    assert relabelled["effects"][-1] == {"type": "annotate", "ids": ["a"], "labelId": "NEW"}


def test_a_keep_that_fails_shows_the_suspect_again_and_keep_is_for_suspects_only(run):
    *_, failed = run(suspects("a", "b"), KEEP, FAILED)
    assert failed["state"]["current"] == "a" and failed["state"]["history"] == []
    assert failed["effects"] == [COUNTS]
    *_, captured, similar = run(loaded("a"), KEEP, SIMILAR)
    assert captured["effects"] == [] and captured["changed"] == []
    assert similar["effects"] == [{"type": "similar", "id": "a"}]
    *_, on_suspect = run(suspects("a"), SIMILAR)
    assert on_suspect["effects"] == [] and on_suspect["changed"] == []


def test_delete_is_held_back_like_a_dismiss_and_deletes_the_sample(run):
    *_, held, undone, again, sent, refused = run(suspects("a", "b"), {"type": "dismiss"}, UNDO,
                                                 DISMISS, COMMIT, UNDO)
    assert held["state"]["current"] == "b" and held["state"]["pending"] == "a"
    assert held["effects"] == [START_TIMER, {"type": "undoToast", "say": "deleted"}]
    assert undone["state"]["current"] == "a"
    assert undone["effects"] == [STOP_TIMER, toast("deleteUndone")]
    assert again["state"]["pending"] == "a"
    assert sent["effects"] == [STOP_TIMER, HIDE_TOAST, {"type": "delete", "id": "a"}]
    assert refused["effects"] == [toast("deleteSent")]
    assert refused["state"]["current"] == "b"


def test_a_pending_delete_goes_when_the_tab_changes_and_the_next_action_is_not_a_delete(run):
    *_, switched = run(SUSPECT, suspects("a", "b"), DISMISS, {"type": "strategy", "name": ""})
    assert switched["effects"] == [STOP_TIMER, HIDE_TOAST, {"type": "delete", "id": "a"},
                                   fetch(51)]


def test_k_keeps_a_suspect_and_f_is_for_captured_items(run):
    args = {"keys": ["k", "f", "d"], "similarOpen": False}
    on_suspect = run.page.evaluate(KEYS, {**args, "queue": [suspect("a")]})
    assert on_suspect == {"k": {"type": "keep"}, "f": None, "d": {"type": "dismiss"}}
    on_captured = run.page.evaluate(KEYS, {**args, "queue": [{"id": "a", "data": "x"}]})
    assert on_captured == {"k": None, "f": {"type": "toggleSimilar"}, "d": {"type": "dismiss"}}
