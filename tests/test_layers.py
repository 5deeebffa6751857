"""The runtime layer alone serves the invoke path: no scikit-learn, no scipy, within 250 MB.
The pruned training layer alone trains a head end to end, without the encoder, within 250 MB.

Builds the layers for this interpreter's Python (wheels from PyPI), then embeds and classifies,
or trains, in a fresh `python -I -S` whose only third-party code is a layer and `functions/`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelloop.encoder import Features

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
def built(tmp_path_factory, accurate_encoder_dir, image_encoder_dir):
    if not (ROOT / "layers" / "encoder" / "manifest.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_encoder.py")],
                       check=True, cwd=ROOT)
    out = tmp_path_factory.mktemp("layers")
    proc = run_build(out)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, out / f"runtime-py{PYTHON}-{PLATFORM}", summary


@pytest.fixture(scope="module")
def training(built):
    out, _, _ = built
    return out / f"training-py{PYTHON}-{PLATFORM}"


def load_script():
    spec = importlib.util.spec_from_file_location("build_layers", SCRIPT)
    build_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_layers)
    return build_layers


def test_layout(built, training):
    out, runtime, summary = built
    assert (runtime / "python" / "onnxruntime").is_dir()
    assert (runtime / "python" / "boto3").is_dir()  # --with-boto3
    assert (out / "encoder-layer" / "encoder" / "manifest.json").is_file()
    assert (out / "encoder-layer" / "encoder" / "model.onnx").is_file()
    # The accurate encoder's model is an S3 asset of the stack, not part of the layer.
    accurate = out / "encoder-layer" / "encoder-accurate"
    assert sorted(p.name for p in accurate.iterdir()) == ["manifest.json", "tokenizer.json"]
    # The image encoder is small enough to ship whole.
    image = out / "encoder-layer" / "encoder-image"
    assert sorted(p.name for p in image.iterdir()) == ["manifest.json", "model.onnx"]
    assert (runtime / "python" / "PIL").is_dir()
    for gone in ("huggingface_hub", "hf_xet", "yaml"):  # the hub client tokenizers pulls in
        assert not (runtime / "python" / gone).exists(), gone
    assert not list((runtime / "python").glob("huggingface_hub-*.dist-info"))
    for pkg in ("sklearn", "scipy", "numpy", "pydantic", "aws_lambda_powertools", "boto3"):
        assert (training / "python" / pkg).is_dir(), pkg
    # The worker never runs an encoder: no onnxruntime, no tokenizers (nor what they pull in),
    # no Pillow.
    for pkg in ("onnxruntime", "tokenizers", "huggingface_hub", "PIL"):
        assert not (training / "python" / pkg).exists(), pkg
    assert summary["folders"] == {"encoder": "encoder-layer", "runtime": runtime.name,
                                  "training": training.name}
    assert summary["function_layers"] == {"api": ["runtime", "encoder"],
                                          "batch-invoke": ["runtime", "encoder"],
                                          "training": ["training"]}
    assert not list(out.glob(".*runtime*")), "staging folder left behind"
    assert not list(out.glob(".*training*")), "staging folder left behind"


def test_no_training_dependencies(built):
    _, runtime, _ = built
    names = {p.name.lower() for p in (runtime / "python").iterdir()}
    assert not {n for n in names if n.startswith(("sklearn", "scikit_learn", "scipy"))}


def unzipped(*dirs: Path) -> int:
    return sum(f.stat().st_size for d in dirs for f in d.rglob("*") if f.is_file())


def test_fits_lambda_limit(built, training):
    out, runtime, summary = built
    code = sum(f.stat().st_size for f in (ROOT / "functions" / "labelloop").rglob("*")
               if f.is_file() and "__pycache__" not in f.parts)
    functions = {"api": unzipped(runtime, out / "encoder-layer") + code,
                 "training": unzipped(training) + code}
    functions["batch-invoke"] = functions["api"]
    assert summary["limit_mb"] == 250
    assert summary["code_mb"] == pytest.approx(code / 2**20, abs=0.05)
    for fn, n in functions.items():
        assert summary["functions_mb"][fn] == pytest.approx(n / 2**20, abs=0.1), fn
        assert n <= 250 * 2**20, (fn, n / 2**20)
    # scikit-learn + scipy + numpy alone come to about 245 MB installed.
    assert functions["training"] <= 230 * 2**20


def test_build_fails_above_limit(built, monkeypatch, capsys):
    out, _, summary = built
    build_layers = load_script()
    limit = summary["functions_mb"]["training"] - 1
    monkeypatch.setattr(build_layers, "LIMIT_MB", limit)
    with pytest.raises(SystemExit, match=r"over Lambda's .* limit: .*training \("):
        build_layers.main(["--python", PYTHON, "--platform", PLATFORM, "--out", str(out),
                           "--with-boto3"])
    assert "up to date" in capsys.readouterr().out  # refused on size, not rebuilt


def test_pruned(built):
    _, runtime, _ = built
    site = runtime / "python"
    assert not list(site.rglob("__pycache__"))
    assert not list(site.rglob("tests"))
    assert not (site / "onnxruntime" / "transformers").exists()
    assert not (site / "numpy" / "f2py").exists()
    assert (site / "numpy" / "testing").is_dir()


def test_training_layer_pruned(training):
    build_layers = load_script()
    site = training / "python"
    assert not list(site.rglob("__pycache__"))
    assert not [d for d in site.rglob("*") if d.is_dir() and d.name in ("tests", "test")]
    for pattern in ("*.pyc", *build_layers.SOURCE_PATTERNS):
        assert not list(site.rglob(pattern)), pattern
    for sub in build_layers.SCIPY_UNUSED:
        assert not (site / "scipy" / sub).exists(), sub
    for sub in ("linalg", "optimize", "sparse", "special", "stats", "ndimage", "_lib"):
        assert (site / "scipy" / sub).is_dir(), sub
    assert (site / "numpy" / "f2py").is_dir()  # scipy's array_api_compat star-imports numpy
    # Kept on purpose: numpy's OpenBLAS is ILP64, scipy's LP64; neither serves the other.
    assert list((site / "numpy.libs").glob("libscipy_openblas64_*.so"))
    assert list((site / "scipy.libs").glob("libscipy_openblas-*.so"))


PROBE = """
import sys
layer, functions = sys.argv[1:3]
assert not any("site-packages" in p for p in sys.path), sys.path
sys.path[:0] = [layer, functions]

import numpy as np
import onnxruntime
from labelloop.encoder import Encoder
from labelloop.ml.head import Head

assert np.__file__.startswith(layer) and onnxruntime.__file__.startswith(layer)
encoder = Encoder()
protos = encoder.embed(["the invoice is overdue", "what a lovely sunny day"])
assert protos.shape == (2, 384), protos.shape
assert np.allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-5)
head = Head.from_bytes(Head(("billing", "weather"), protos, np.zeros(2)).to_bytes())
assert head.predict(encoder.embed(["please pay the outstanding bill"]))[0] == "billing"
# The accurate encoder from the layer's manifest and tokenizer, its model fetched on first use.
accurate = Encoder(encoder="accurate",
                   fetch_model=lambda dest: dest.write_bytes(open(sys.argv[3], "rb").read()))
assert accurate.embed(["the invoice is overdue"]).shape == (1, 768)
# The image encoder, with Pillow from the layer.
import io
import PIL.Image
from labelloop.image_encoder import ImageEncoder

assert PIL.Image.__file__.startswith(layer)
picture = io.BytesIO()
PIL.Image.new("RGB", (640, 480), (200, 40, 40)).save(picture, format="JPEG")
assert ImageEncoder(encoder="image").embed([picture.getvalue()]).shape == (1, 1280)
# What the runtime layer leaves out (tokenizers' hub downloads) is never imported.
assert not {"huggingface_hub", "hf_xet", "yaml", "fsspec"} & set(sys.modules)
print(sorted(m for m in sys.modules if m.split(".")[0] in {"sklearn", "scipy"}))
"""


def test_layer_alone_serves_invoke_path(built, accurate_encoder_dir, image_encoder_dir,
                                         tmp_path):
    out, runtime, _ = built
    env = {"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp_path),
           "LABELLOOP_ENCODER_DIR": str(out / "encoder-layer" / "encoder"),
           "LABELLOOP_ACCURATE_ENCODER_DIR": str(out / "encoder-layer" / "encoder-accurate"),
           "LABELLOOP_IMAGE_ENCODER_DIR": str(out / "encoder-layer" / "encoder-image")}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(runtime / "python"), str(ROOT / "functions"),
         str(accurate_encoder_dir / "model.onnx")],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


TRAIN_PROBE = """
import json, sys
layer, functions, data = sys.argv[1:4]
assert not any("site-packages" in p for p in sys.path), sys.path
sys.path[:0] = [layer, functions]

import numpy as np
import labelloop.handlers.training  # the worker's entry point and all its imports
from labelloop.encoder import Features
from labelloop.ml.head import Head
from labelloop.ml.build import LabelSpec, build_model

z = np.load(data, allow_pickle=False)

def features(prefix):
    ends = np.cumsum(z[prefix + "lengths"])[:-1]
    return Features(z[prefix + "X"], np.split(z[prefix + "tokens"], ends))

samples, priors, new = features("sample_"), features("prior_"), features("new_")
owner = z["prior_owner"]
specs = [LabelSpec(lb, priors=priors.take(np.flatnonzero(owner == lb)))
         for lb in sorted(set(owner.tolist()))]
model = build_model(None, specs, samples, z["sample_y"].tolist())  # the worker passes None
assert not model.zero_shot
head = Head.from_bytes(model.head.to_bytes())  # the artifact as stored and served
import scipy, sklearn
for m in (np, scipy, sklearn, labelloop.handlers.training):
    assert m.__file__.startswith((layer, functions)), m.__file__
print(json.dumps({
    "train_accuracy": float((head.predict(samples.embeddings, samples.tokens)
                             == z["sample_y"]).mean()),
    "new_predictions": head.predict(new.embeddings, new.tokens).tolist(),
    "cv_accuracy": model.cv_accuracy, "n_folds": model.n_folds,
    "lexical_weight": head.lexical_weight,
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
    "scipy": sorted({m.split(".")[1] for m in sys.modules
                     if m.startswith("scipy.") and not m.startswith("scipy._")}),
}))
"""

TEXTS = {
    "billing": ["my invoice is overdue", "I was charged twice on my card",
                "please send a receipt for my payment", "how do I update my billing address",
                "the refund has not arrived yet", "why is my bill so high this month"],
    "weather": ["will it rain tomorrow", "what a sunny warm afternoon",
                "a storm is coming with strong winds", "how cold will it be tonight",
                "snow is expected over the weekend", "the forecast says heavy fog"],
    "sports": ["who won the football match", "the tennis final went to five sets",
               "our team scored in the last minute", "when does the basketball season start",
               "she ran the marathon in record time", "the goalkeeper saved a penalty"],
}
NEW = {"billing": "I need a copy of last month's invoice",
       "weather": "is it going to be windy and rainy today",
       "sports": "the striker scored two goals in the final"}


def test_training_layer_alone_trains(training, encoder, tmp_path):
    """Features from the encoder here, training from the pruned layer alone in a subprocess
    that has no encoder (the worker reads stored features)."""
    from labelloop.ml.build import LabelSpec, label_priors

    labels = sorted(TEXTS)
    y = [lb for lb in labels for _ in TEXTS[lb]]
    priors = label_priors(encoder, [LabelSpec(lb) for lb in labels])
    arrays = {"sample_y": np.array(y), "new_y": np.array([NEW[lb] for lb in labels]),
              "prior_owner": np.array([lb for lb, f in zip(labels, priors, strict=True)
                                       for _ in range(len(f))])}
    for prefix, f in [("sample_", encoder.featurize([t for lb in labels for t in TEXTS[lb]])),
                      ("prior_", Features(np.concatenate([p.embeddings for p in priors]),
                                          [t for p in priors for t in p.tokens])),
                      ("new_", encoder.featurize([NEW[lb] for lb in labels]))]:
        arrays |= {prefix + "X": f.embeddings, prefix + "tokens": np.concatenate(f.tokens),
                   prefix + "lengths": np.array([len(t) for t in f.tokens])}
    data = tmp_path / "features.npz"
    np.savez(data, **arrays)

    env = {"PATH": os.environ.get("PATH", ""),
           "LABELLOOP_ENCODER_DIR": str(tmp_path / "no-encoder-here")}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", TRAIN_PROBE, str(training / "python"),
         str(ROOT / "functions"), str(data)],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["train_accuracy"] == 1.0
    assert result["new_predictions"] == labels
    assert result["cv_accuracy"] >= 0.8
    assert result["n_folds"] >= 2
    assert {"sklearn", "scipy", "numpy", "aws_lambda_powertools"} <= set(result["modules"])
    assert not {"onnxruntime", "tokenizers"} & set(result["modules"])
    # What the pruning must keep, and nothing it removed was asked for.
    assert {"linalg", "optimize", "sparse"} <= set(result["scipy"])
    assert not set(load_script().SCIPY_UNUSED) & set(result["scipy"])


def test_rebuild_is_reused(built):
    out, _, _ = built
    stdout = run_build(out).stdout
    assert f"runtime-py{PYTHON}-{PLATFORM}: up to date" in stdout
    assert f"training-py{PYTHON}-{PLATFORM}: up to date" in stdout


def test_refuses_forbidden_packages(tmp_path):
    build_layers = load_script()
    (tmp_path / "python" / "scipy").mkdir(parents=True)
    with pytest.raises(SystemExit, match="scipy"):
        build_layers.check_forbidden(tmp_path / "python", ["sklearn", "scipy"])
    with pytest.raises(SystemExit, match="sklearn"):
        build_layers.check_required(tmp_path / "python", ["sklearn"])


def test_training_requirements():
    build_layers = load_script()
    reqs = {build_layers.dist_name(r) for r in build_layers.requirements(
        ["train"], False, build_layers.LAYERS["training"]["without"])}
    assert {"scikit-learn", "numpy", "pydantic", "aws-lambda-powertools"} <= reqs
    assert not {"onnxruntime", "tokenizers", "boto3"} & reqs
