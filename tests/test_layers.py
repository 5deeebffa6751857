"""The runtime layer alone serves the invoke path: no scikit-learn, no scipy, within 250 MB.

Builds the layer for this interpreter's Python (wheels from PyPI), then embeds and classifies
in a fresh `python -I -S` whose only third-party code is the layer and `functions/`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_layers.py"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM = "manylinux_2_28_x86_64"


def run_build(out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--python", PYTHON, "--platform", PLATFORM,
         "--out", str(out), "--with-boto3"],
        capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (ROOT / "layers" / "encoder" / "manifest.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_encoder.py")],
                       check=True, cwd=ROOT)
    out = tmp_path_factory.mktemp("layers")
    proc = run_build(out)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, out / f"runtime-py{PYTHON}-{PLATFORM}", summary


def test_layout(built):
    out, runtime, _ = built
    assert (runtime / "python" / "onnxruntime").is_dir()
    assert (runtime / "python" / "boto3").is_dir()  # --with-boto3
    assert (out / "encoder-layer" / "encoder" / "manifest.json").is_file()
    assert (out / "encoder-layer" / "encoder" / "model.onnx").is_file()
    assert not list(out.glob(".*runtime*")), "staging folder left behind"


def test_no_training_dependencies(built):
    _, runtime, _ = built
    names = {p.name.lower() for p in (runtime / "python").iterdir()}
    assert not {n for n in names if n.startswith(("sklearn", "scikit_learn", "scipy"))}


def test_fits_lambda_limit(built):
    out, runtime, summary = built
    unzipped = sum(f.stat().st_size for d in (runtime, out / "encoder-layer")
                   for f in d.rglob("*") if f.is_file())
    assert summary["limit_mb"] == 250
    assert summary["total_mb"] == pytest.approx(unzipped / 2**20, abs=0.1)
    assert unzipped < 250 * 2**20


def test_pruned(built):
    _, runtime, _ = built
    site = runtime / "python"
    assert not list(site.rglob("__pycache__"))
    assert not list(site.rglob("tests"))
    assert not (site / "onnxruntime" / "transformers").exists()
    assert not (site / "numpy" / "f2py").exists()
    assert (site / "numpy" / "testing").is_dir()


PROBE = """
import sys
layer, functions = sys.argv[1:3]
assert not any("site-packages" in p for p in sys.path), sys.path
sys.path[:0] = [layer, functions]

import numpy as np
import onnxruntime
from labelloop.encoder import Encoder
from labelloop.head import Head

assert np.__file__.startswith(layer) and onnxruntime.__file__.startswith(layer)
encoder = Encoder()
protos = encoder.embed(["the invoice is overdue", "what a lovely sunny day"])
assert protos.shape == (2, 384), protos.shape
assert np.allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-5)
head = Head.from_bytes(Head(("billing", "weather"), protos, np.zeros(2)).to_bytes())
assert head.predict(encoder.embed(["please pay the outstanding bill"]))[0] == "billing"
print(sorted(m for m in sys.modules if m.split(".")[0] in {"sklearn", "scipy"}))
"""


def test_layer_alone_serves_invoke_path(built):
    out, runtime, _ = built
    env = {"PATH": os.environ.get("PATH", ""),
           "LABELLOOP_ENCODER_DIR": str(out / "encoder-layer" / "encoder")}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(runtime / "python"), str(ROOT / "functions")],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_rebuild_is_reused(built):
    out, _, _ = built
    assert "up to date" in run_build(out).stdout


def test_refuses_forbidden_packages(tmp_path):
    spec = importlib.util.spec_from_file_location("build_layers", SCRIPT)
    build_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_layers)
    (tmp_path / "python" / "scipy").mkdir(parents=True)
    with pytest.raises(SystemExit, match="scipy"):
        build_layers.check_forbidden(tmp_path / "python", ["sklearn", "scipy"])
