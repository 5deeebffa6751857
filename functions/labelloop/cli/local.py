"""`labelloop local`: the whole app on this machine, state kept in a data directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from labelloop.cli.connection import DATA_DIR

LOG_FILE = "stack.log"


def run_local(data_dir: Path = DATA_DIR, *, port: int = 5000, ephemeral: bool = False,
              example: bool = False, example_images: Path | None = None,
              verbose: bool = False, allow_loopback_image_urls: bool = False) -> None:
    """Serve until stopped; with `example`, run the README's example once serving. The logs go
    to `data_dir`/stack.log, or with `verbose` to the terminal."""
    from labelloop.local import limit_malloc_arenas
    from labelloop.local.stack import LocalStack

    limit_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # a line per client otherwise
    on_ready = None
    if example:
        from labelloop.local.example import run_example

        def on_ready(stack: LocalStack) -> None:
            run_example(stack.url, stack.client_id, stack.client_secret, images=example_images)

    stack = LocalStack(data_dir, port=port, persist=not ephemeral,
                       allow_loopback_image_urls=allow_loopback_image_urls)
    if verbose:
        stack.run_forever(on_ready)
        return
    from labelloop.local.logfile import logs_to_file

    log = data_dir / LOG_FILE
    with logs_to_file(log):
        print(f"logs: {log} (--verbose: here instead)", flush=True)
        stack.run_forever(on_ready)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "local", help="run the API and workers locally on moto (state kept in --data-dir)",
        description=__doc__)
    p.add_argument("--port", type=int, default=5000,
                   help="API port (default 5000: the nyckel SDK only pages on :5000)")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR,
                   help="where state and client credentials are kept (default ./.labelloop)")
    p.add_argument("--ephemeral", action="store_true",
                   help="keep the AWS state in memory only, lost on stop (credentials are still "
                        "kept in --data-dir): no snapshot work, as for benchmarks")
    p.add_argument("--example", action="store_true",
                   help="once serving, create (first time only), train and invoke the example "
                        "function from scripts/data")
    p.add_argument("--example-images", type=Path, metavar="DIR",
                   help="with --example, also an image function from this folder "
                        "(scripts/example_images.py writes it: samples/<label>/*.png, "
                        "queries/*.png)")
    p.add_argument("--allow-loopback-image-urls", action="store_true",
                   help="let image functions fetch http(s) URLs on this machine (loopback "
                        "addresses only; other private addresses stay refused)")
    p.add_argument("--verbose", action="store_true",
                   help=f"the JSON logs on the terminal, not in --data-dir/{LOG_FILE}")
    p.set_defaults(func=lambda a: run_local(a.data_dir, port=a.port, ephemeral=a.ephemeral,
                                            example=a.example,
                                            example_images=a.example_images,
                                            verbose=a.verbose,
                                            allow_loopback_image_urls=a.allow_loopback_image_urls))
