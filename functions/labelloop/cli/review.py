"""`labelloop review`: the capture buffer, or the suspected mislabels (`--strategy suspect`),
one item at a time, from the keyboard.

`Review.run` is the loop: it reads *entries* from any iterator (a key, or a typed line) and
calls the API client, so it runs the same on a terminal and on piped input. Where entries come
from is up to the caller (`review`, the command, picks by standard input): `key_entries` reads
single keypresses from a terminal (cbreak mode, no curses); `line_entries` reads one line per
entry (pipes, files, tests).

Entries: a label number (1-9, 0 for the 10th, or any number typed and ended with Enter), or a
label name; `s` skip, `d` dismiss, `u` undo the last action, `q` quit (as does the end of the
input). Reviewing suspects, a label relabels, `k` keeps the label, `d` deletes the sample, and
undoing a relabel puts the old label back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TextIO

from labelloop.cli.connection import guarded
from labelloop.cli.errors import CliError
from labelloop.client import ApiError, Client

COMMANDS = {"s": "skip", "d": "dismiss", "k": "keep", "u": "undo", "q": "quit"}
SUSPECT = "suspect"  # the queue of suspected mislabels (`usecases.suspects`)
KEYED_LABELS = 10  # labels 1-9 and 0 have a key of their own
MAX_BATCH = 1000  # the API's page limit


def review(client: Client, function_id: str, *, strategy: str | None = None,
           batch_size: int = 50) -> None:
    """Review from standard input: single keys on a terminal, else one entry per line."""
    labels = client.list_labels(function_id)
    if not labels:
        raise CliError(f"{function_id} has no labels to review with")
    session = Review(client, function_id, labels, strategy, batch_size,
                     out=lambda line: print(line, flush=True))
    tty = sys.stdin.isatty()
    entries = (key_entries(sys.stdin, typed=len(labels) > KEYED_LABELS) if tty
               else line_entries(sys.stdin))
    with closing(entries):  # a terminal is restored even if the API fails meanwhile
        session.run(entries)


@dataclass(frozen=True)
class Action:
    kind: str  # "label" or one of COMMANDS' values
    label: str | None = None  # kind "label": its name


def interpret(entry: str, labels: list[str]) -> Action | str:
    """An entry as an action, or a message saying why it is none. Commands come first: a label
    named like one (`s`, `d`, `k`, `u`, `q`) is picked by its number."""
    entry = entry.strip()
    if entry.lower() in COMMANDS:
        return Action(COMMANDS[entry.lower()])
    if entry.isdigit():
        n = KEYED_LABELS if entry == "0" else int(entry)
        if 1 <= n <= len(labels):
            return Action("label", labels[n - 1])
        return f"no label {entry} (1-{len(labels)})"
    if entry in labels:
        return Action("label", entry)
    folded = [name for name in labels if name.casefold() == entry.casefold()]
    if len(folded) == 1:
        return Action("label", folded[0])
    return f"unknown key {entry!r}" if entry else "nothing typed"


@dataclass
class Summary:
    annotated: int = 0
    dismissed: int = 0
    skipped: int = 0
    kept: int = 0
    suspects: bool = False  # annotated means relabelled, dismissed means deleted

    def __str__(self) -> str:
        if self.suspects:
            return (f"{self.annotated} relabelled, {self.kept} kept, {self.dismissed} deleted, "
                    f"{self.skipped} skipped")
        return (f"{self.annotated} annotated, {self.dismissed} dismissed, "
                f"{self.skipped} skipped")


@dataclass
class Review:
    client: Client
    function_id: str
    labels: list[dict]  # as `list_labels` returns them, in the order they are numbered
    strategy: str | None = None
    batch_size: int = 50
    out: Callable[[str], None] = print
    summary: Summary = field(default_factory=Summary)
    _pending: list[dict] = field(default_factory=list)  # this page's items still to show
    _seen: set[str] = field(default_factory=set)  # items acted on (skipped too) this session
    _done: list[tuple[str, dict]] = field(default_factory=list)  # (action, item), for undo

    def __post_init__(self) -> None:
        self.summary.suspects = self.suspects

    @property
    def names(self) -> list[str]:
        return [lb["name"] for lb in self.labels]

    @property
    def suspects(self) -> bool:
        return self.strategy == SUSPECT

    def run(self, entries: Iterable[str]) -> Summary:
        """Show items and act on entries until the queue is empty, `q`, or the entries end."""
        entries = iter(entries)
        try:
            while (item := self._current()) is not None:
                self._show(item)
                if not self._step(item, entries):
                    break
            else:
                self.out("the review queue is empty")
        except KeyboardInterrupt:
            self.out("")
        self.out(f"review: {self.summary}")
        return self.summary

    # -- one item -------------------------------------------------------------------------

    def _step(self, item: dict, entries: Iterator[str]) -> bool:
        """Read entries until one acts on `item` (or undoes); False to stop the session."""
        while True:
            entry = next(entries, None)
            if entry is None:
                return False
            action = interpret(entry, self.names)
            if isinstance(action, str):
                self.out(f"  {action}; {self._keys_help()}")
                continue
            if action.kind == "quit":
                return False
            try:
                if self._act(action, item):
                    return True
            except ApiError as err:
                # The item stays on screen: e.g. it was reviewed elsewhere meanwhile.
                self.out(f"  error: {err.status} {err.message}")

    def _act(self, action: Action, item: dict) -> bool:
        """Do it; True once the item on screen is dealt with (or undo brought another)."""
        sid = item["id"]
        if action.kind == "label":
            self.client.annotate(self.function_id, sid, action.label)
            self._finish(item, "annotated")
            self.summary.annotated += 1
            self.out(f"  -> {action.label}")
        elif action.kind == "skip":
            self._finish(item, "skipped")
            self.summary.skipped += 1
            self.out("  skipped")
        elif action.kind == "dismiss" and self.suspects:
            self.client.delete_sample(self.function_id, sid)
            self._finish(item, "deleted")
            self.summary.dismissed += 1
            self.out("  deleted")
        elif action.kind == "dismiss":
            self.client.dismiss(self.function_id, sid)
            self._finish(item, "dismissed")
            self.summary.dismissed += 1
            self.out("  dismissed")
        elif action.kind == "keep":
            if not self.suspects:
                self.out(f"  k keeps a suspected mislabel's label (--strategy {SUSPECT}); "
                         f"{self._keys_help()}")
                return False
            self.client.keep(self.function_id, sid)
            self._finish(item, "kept")
            self.summary.kept += 1
            self.out("  kept")
        else:
            return self._undo()
        return True

    def _finish(self, item: dict, how: str) -> None:
        self._pending.remove(item)
        self._seen.add(item["id"])
        self._done.append((how, item))

    def _undo(self) -> bool:
        if not self._done:
            self.out("  nothing to undo")
            return False
        how, item = self._done.pop()
        sid = item["id"]
        if how == "skipped":
            self.summary.skipped -= 1
            self.out(f"  undone: skip of {sid}")
        else:
            back = (self._undo_suspect if self.suspects else self._undo_capture)(how, item)
            if back is None:
                return False
            item = back
        self._seen.discard(sid)
        self._pending.insert(0, item)
        return True

    def _undo_capture(self, how: str, item: dict) -> dict | None:
        """A dismissal or an annotation undone: the item to show again (None: it cannot)."""
        sid = item["id"]
        if how == "dismissed":
            # Dismissing deleted the item (its text is not captured again): nothing to restore.
            self.out(f"  cannot undo: {sid} was dismissed, and a dismissed item is deleted. "
                     "Press u again to undo the action before it.")
            return None
        self.client.clear_annotation(self.function_id, sid)
        self.summary.annotated -= 1
        # Clearing returns it to the queue, unless its strategy's slots filled meanwhile.
        back = self.client.get_sample(self.function_id, sid).get("inReviewQueue", False)
        self.out(f"  undone: annotation of {sid} cleared" + (
            "; it is back in the review queue" if back else
            ". Its strategy's slots filled meanwhile, so it is not back in the review "
            "queue: label it again now, or skip it to leave it unannotated"))
        return {**item, "inReviewQueue": back}

    def _undo_suspect(self, how: str, item: dict) -> dict | None:
        """A deletion, relabel or keep of a suspected mislabel undone, as `_undo_capture`."""
        sid = item["id"]
        if how == "deleted":
            self.out(f"  cannot undo: {sid} was deleted. Press u again to undo the action "
                     "before it.")
            return None
        if how == "annotated":
            self.client.annotate(self.function_id, sid, label_id=item["annotation"]["labelId"])
            self.summary.annotated -= 1
            self.out(f"  undone: {sid} has its old label back")
        else:  # kept: that stays recorded; shown again, the item can be relabelled
            self.summary.kept -= 1
            self.out(f"  undone: {sid} is shown again (its label stays kept unless you "
                     "relabel it)")
        return item

    # -- the queue ------------------------------------------------------------------------

    def _current(self) -> dict | None:
        if not self._pending:
            self._pending = self._fetch()
        return self._pending[0] if self._pending else None

    def _fetch(self) -> list[dict]:
        """The queue's next items not acted on this session. The queue has no cursor, and
        skipped items stay in it: ask for enough to see past them."""
        skipped = sum(1 for how, _ in self._done if how == "skipped")
        size = min(self.batch_size + skipped, MAX_BATCH)
        page = self.client.review_queue(self.function_id, self.strategy, size)
        fresh = [i for i in page if i["id"] not in self._seen]
        if not fresh and len(page) == size == MAX_BATCH:
            self.out(f"the first {MAX_BATCH} items of the queue were all skipped; start a new "
                     "review to see them again")
        return fresh

    # -- output ---------------------------------------------------------------------------

    def _show(self, item: dict) -> None:
        names = {lb["id"]: lb["name"] for lb in self.labels}
        out = self.out
        out("")
        if self.suspects:
            self._show_suspect(item, names)
            return
        reason = item.get("captureReason") or item.get("origin") or "?"
        priority = item.get("priority")
        out(f"{item['id']}  [{reason}" + (f", priority {priority:.2f}]" if priority is not None
                                         else "]"))
        if item.get("inReviewQueue") is False:
            out("  (no longer in the review queue: its annotation was undone)")
        for line in (item.get("data") or "").splitlines() or [""]:
            out(f"  | {line}")
        now, then = item.get("prediction"), item.get("invokePrediction")
        if now:
            out(f"  model: {_prediction(now, names)}")
        if then and (not now or then.get("labelId") != now.get("labelId")):
            version = then.get("modelVersion")
            out(f"  at invoke{f' (v{version})' if version is not None else ''}: "
                f"{_prediction(then, names)}")
        out("  " + "  ".join(f"{_key(n)} {name}" for n, name in enumerate(self.names, 1)))
        out(f"  {self._keys_help()}")

    def _show_suspect(self, item: dict, names: dict[str, str]) -> None:
        x = item["suspect"]
        self.out(f"{item['id']}  [suspected mislabel, v{x['modelVersion']}]")
        for line in (item.get("data") or "").splitlines() or [""]:
            self.out(f"  | {line}")
        self.out(f"  annotated {names.get(x['annotatedLabelId'], '?')} "
                 f"({x['annotatedConfidence']:.2f}), model says "
                 f"{names.get(x['labelId'], '?')} ({x['confidence']:.2f})")
        self.out("  " + "  ".join(f"{_key(n)} {name}" for n, name in enumerate(self.names, 1)))
        self.out(f"  {self._keys_help()}")

    def _keys_help(self) -> str:
        n = len(self.names)
        pick = ("1-9, 0" if n == KEYED_LABELS else f"1-{n}" if n < KEYED_LABELS else
                "a label number or name, then Enter")
        if self.suspects:
            return f"{pick}: relabel  k: keep  d: delete  s: skip  u: undo  q: quit"
        return f"{pick}: label  s: skip  d: dismiss  u: undo  q: quit"


def _key(n: int) -> str:
    return "0" if n == KEYED_LABELS else str(n)


def _prediction(p: dict, names: dict[str, str]) -> str:
    name = names.get(p.get("labelId"), p.get("labelId") or "?")
    confidence = p.get("confidence")
    return name + (f" {confidence:.2f}" if confidence is not None else "")


# -- entries ---------------------------------------------------------------------------------

def line_entries(stream: TextIO) -> Iterator[str]:
    """One entry per line (blank lines are skipped)."""
    for line in stream:
        if line.strip():
            yield line.strip()


def key_entries(stream: TextIO, typed: bool) -> Iterator[str]:
    """Single keypresses from a terminal, in cbreak mode (restored on exit; Ctrl-C still
    interrupts). With `typed` (more than ten labels), a number or label name is typed and ended
    with Enter, with echo and Backspace; `s`, `d`, `k`, `u`, `q` still act at once on an empty
    line."""
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        typing = ""
        while True:
            key = stream.read(1)
            if key in ("", "\x04"):  # end of input, Ctrl-D
                return
            if not typed:
                if key.strip():
                    yield key
                continue
            if key in ("\r", "\n"):
                _echo("\n")
                if typing:
                    yield typing
                typing = ""
            elif key in ("\x7f", "\b"):
                if typing:
                    typing = typing[:-1]
                    _echo("\b \b")
            elif not typing and key.lower() in COMMANDS:
                yield key
            elif key.isprintable():
                typing += key
                _echo(key)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# -- the command line ------------------------------------------------------------------------

def add_parser(subparsers: argparse._SubParsersAction, conn: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "review", parents=[conn],
        help="review captured invokes (or suspected mislabels) from the keyboard",
        description="Show the review queue one item at a time. Keys: a label's number (1-9, "
                    "0 for the 10th; with more labels, a number or name and Enter), s skip, "
                    "d dismiss, u undo, q quit. Piped input: one key or label per line. With "
                    f"--strategy {SUSPECT}: the annotated samples the last training run "
                    "doubts; a label relabels, k keeps the label, d deletes the sample.")
    p.add_argument("function_id")
    p.add_argument("--strategy", metavar="NAME",
                   help="only items captured by this strategy (e.g. uncertainty, random), or "
                        f"{SUSPECT}: suspected mislabels")
    p.add_argument("--batch-size", type=_batch_size, default=50, metavar="N",
                   help="items fetched at a time (default 50)")
    p.set_defaults(func=guarded(lambda a, client: review(
        client, a.function_id, strategy=a.strategy, batch_size=a.batch_size)))


def _batch_size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to {MAX_BATCH}")
    return n
