"""`labelloop local`: the whole app on this machine, state kept in a data directory."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

LOG_FILE = "stack.log"  # in the data directory: the handlers' JSON logs, moto's and ours


def run(args: argparse.Namespace) -> None:
    from labelloop.local import limit_malloc_arenas
    from labelloop.local.stack import LocalStack

    limit_malloc_arenas()
    terminal = None if args.verbose else _logs_to_file(args.data_dir / LOG_FILE)
    # Bound now to the process's stderr: the log file unless --verbose.
    logging.basicConfig(level=logging.INFO, stream=sys.__stderr__,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # a line per client otherwise
    on_ready = None
    if args.example:
        from labelloop.local.example import run_example

        def on_ready(stack: LocalStack) -> None:
            run_example(stack.url, stack.client_id, stack.client_secret)

    stack = LocalStack(args.data_dir, port=args.port, persist=not args.ephemeral)
    if terminal is None:
        stack.run_forever(on_ready)
        return
    # What is printed for a person (banner, the example's story, progress bars) goes to the
    # terminal; loggers write to the process's descriptors, now the log file.
    with contextlib.redirect_stdout(terminal), contextlib.redirect_stderr(terminal):
        print(f"logs: {args.data_dir / LOG_FILE} (--verbose shows them here)", flush=True)
        try:
            stack.run_forever(on_ready)
        except Exception as e:
            print(f"error: {e!r}; the log has the details: {args.data_dir / LOG_FILE}",
                  flush=True)
            raise


def _logs_to_file(path: Path):
    """Point this process's stdout and stderr descriptors (inherited by the worker process)
    at `path`, appending; a line-buffered stream on the terminal they were."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    terminal = os.fdopen(os.dup(sys.__stdout__.fileno()), "w", buffering=1)
    sys.__stdout__.flush()
    sys.__stderr__.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, sys.__stdout__.fileno())
    os.dup2(fd, sys.__stderr__.fileno())
    os.close(fd)
    return terminal


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "local", help="run the API and workers locally on moto (state kept in --data-dir)",
        description=__doc__)
    p.add_argument("--port", type=int, default=5000,
                   help="API port (default 5000: the nyckel SDK only pages on :5000)")
    p.add_argument("--data-dir", type=Path, default=Path(".labelloop"),
                   help="where state and client credentials are kept (default ./.labelloop)")
    p.add_argument("--ephemeral", action="store_true",
                   help="keep the AWS state in memory only, lost on stop (credentials are still "
                        "kept in --data-dir): no snapshot work, as for benchmarks")
    p.add_argument("--example", action="store_true",
                   help="once serving, create (first time only), train and invoke the example "
                        "function from scripts/data")
    p.add_argument("--verbose", action="store_true",
                   help=f"logs on the terminal (default: appended to DATA_DIR/{LOG_FILE})")
    p.set_defaults(func=run)
    return p
