"""Build the Lambda layers: the Python packages of each function, and the encoder files.

    python scripts/build_layers.py [--python 3.12] [--platform manylinux_2_28_x86_64] [--out layers]

Output (git-ignored), each folder zipped as one layer (Lambda unpacks layers into /opt):
  <out>/runtime-py<python>-<platform>/python/...   -> /opt/python (on sys.path in Lambda)
  <out>/training-py<python>-<platform>/python/...  -> /opt/python
  <out>/encoder-layer/encoder/...                  -> /opt/encoder (labelloop.encoder looks there)
  <out>/encoder-layer/encoder-accurate/...         -> /opt/encoder-accurate, when built: its
                     manifest and tokenizer only. Its model.onnx (110 MB) would put the api
                     function over the limit: the stack uploads it as an S3 asset, fetched
                     to /tmp on a container's first use of the accurate encoder.
  <out>/encoder-layer/encoder-image/...            -> /opt/encoder-image, when built: the image
                     encoder whole (13.5 MB), so an image function's first invoke reads no S3.

Which function gets which layers (FUNCTIONS):
  api, batch-invoke: runtime + encoder. The runtime layer serves the invoke path without
                     scikit-learn or scipy.
  training:          training alone. It holds everything the worker imports (the runtime
                     dependencies and the `train` extra: scikit-learn, scipy; without the
                     encoder's onnxruntime and tokenizers), so it never sits beside the
                     runtime layer and cannot disagree with it about numpy's version. No
                     encoder layer: the worker trains on stored features.

Lambda's 250 MB limit counts a function's code plus all its layers unzipped: the build fails
if any function is above it. Prints a size table and a one-line JSON summary. A layer whose
stamp matches (requirements, python, platform, recipe) is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from labelloop.resources import RESOURCES

ROOT = Path(__file__).resolve().parents[1]
ENCODER_SRC = ROOT / "layers" / "encoder"
ACCURATE_SRC = ROOT / "layers" / "encoder-accurate"
IMAGE_SRC = ROOT / "layers" / "encoder-image"
LAMBDA_PYTHON = "3.12"
# AWS states the limit as 250 MB and enforces it as 262,144,000 bytes, i.e. MiB.
LIMIT_MB = 250
MB = 1 << 20
# The Lambda Python runtime provides these; a copy in the layer would only spend the budget.
# An interpreter other than Lambda's (local runs, emulators) has no such copy, so it gets them.
LAMBDA_PROVIDED = {"boto3", "botocore", "s3transfer"}
# One entry per layer: optional-dependency groups added to [project].dependencies, the
# dependencies left out ("without", by distribution name), and the import names the layer must
# not / must contain.
#
# The training worker never runs the encoder (it trains on stored features; labelloop.encoder
# imports onnxruntime and tokenizers only inside Encoder, which it never builds), so its layer
# leaves out the two and what they pull in (huggingface_hub, hf_xet, yaml, protobuf, ...):
# with them it measured 291.6 MB unzipped (python 3.11 with boto3), over the limit.
#
# The runtime layer drops what tokenizers pulls in for downloading from the Hugging Face hub
# ("unused", by import name: the encoders load local files, and nothing on the invoke path
# imports these); with them, the image encoder and Pillow put api at 253.4 MB (python 3.11
# with boto3). The training worker reads stored embeddings and never decodes a picture, so its
# layer leaves Pillow out as well.
LAYERS = {
    "runtime": {"extras": [], "without": [],
                "unused": ["hf_xet", "huggingface_hub", "fsspec", "yaml", "_yaml"],
                "forbid": ["sklearn", "scipy", "huggingface_hub", "hf_xet"],
                "require": ["numpy", "onnxruntime", "tokenizers", "PIL"]},
    "training": {"extras": ["train"], "without": ["onnxruntime", "tokenizers", "pillow"],
                 "unused": [], "forbid": ["onnxruntime", "tokenizers", "PIL"],
                 "require": ["sklearn", "scipy", "numpy", "pydantic", "aws_lambda_powertools"]},
}
ENCODER_LAYER = "encoder"
# Each Lambda function: its layers, in addition to its code (functions/labelloop); the stack
# reads the same description.
FUNCTIONS = {f.name: list(f.layers) for f in RESOURCES.functions}
CODE_SRC = ROOT / "functions" / "labelloop"
# Bump when the pruning or install recipe changes, so that existing builds are redone.
# 2: the training layer; also drops Cython/C sources, build files, numpy's Cython examples.
# 3: a layer's "unused" packages are removed after the install.
RECIPE_VERSION = 3
# Never imported on the inference path: quantisation/conversion tooling and sample data.
ORT_UNUSED = ("tools", "transformers", "quantization", "datasets")
# scipy subpackages that nothing the training worker runs imports. Measured (sys.modules after
# an end-to-end HeadTrainer fit with the lexical path, and after importing every sklearn
# module): it loads _lib, constants, fft, integrate, interpolate, linalg, ndimage, optimize,
# sparse, spatial, special, stats. Of the rest only sklearn.datasets (io, datasets) and a lazy
# import in sklearn.cluster (cluster) refer to any, and the kept subpackages mention them in
# docstrings only. A removed one fails loudly (ModuleNotFoundError), never silently.
SCIPY_UNUSED = ("cluster", "datasets", "differentiate", "fftpack", "io", "misc", "odr",
                "signal")
# Sources and build inputs of compiled extensions: read by compilers, never at import.
SOURCE_PATTERNS = ("*.pyi", "*.h", "*.hpp", "*.a", "*.pxd", "*.pxi", "*.pyx", "*.c", "*.cpp",
                   "*.tp", "meson.build")


def requirements(extras: list[str], with_boto3: bool, without: list[str] = ()) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    unknown = set(without) - {dist_name(r) for r in reqs}
    if unknown:
        raise SystemExit(f"cannot leave out {', '.join(sorted(unknown))}: not a requirement")
    dropped = set(without) | (set() if with_boto3 else LAMBDA_PROVIDED)
    return [r for r in reqs if dist_name(r) not in dropped]


def dist_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def platforms(platform: str) -> list[str]:
    # pip takes --platform literally: a manylinux_2_28 target would otherwise refuse the many
    # wheels tagged only manylinux2014 (glibc 2.17), which Lambda's glibc 2.34 runs too.
    m = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    return [platform, f"manylinux2014_{m[2]}"] if m and int(m[1]) > 17 else [platform]


def pip_install(target: Path, reqs: list[str], python: str, platform: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-warn-conflicts", "--target", str(target), "--only-binary=:all:",
           "--implementation", "cp", "--python-version", python, "--no-compile"]
    for p in platforms(platform):
        cmd += ["--platform", p]
    env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore"}
    proc = subprocess.run(cmd + reqs, capture_output=True, text=True, env=env)
    # This machine's pip config names extra local indexes; pip warns about each, harmlessly.
    noise = re.compile(r"^WARNING: Location .* is ignored")
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip() and not noise.match(line):
            print(line, file=sys.stderr)
    if proc.returncode:
        raise SystemExit(f"pip install failed (exit {proc.returncode}) for python {python}, "
                         f"platform {platform}")


def prune(site: Path) -> None:
    """Drop what no function loads: tests, stubs, headers, sources, static libs, tooling.

    numpy.libs and scipy.libs each keep their OpenBLAS: numpy's is the ILP64 build (64-bit
    integers, symbols like scipy_dgemm_64_), scipy's the LP64 one (scipy_dgemm_), so neither
    can stand in for the other."""
    doomed = [site / "bin"]  # console scripts with the build machine's shebang
    for pkg in (p for p in site.iterdir() if p.is_dir()):
        # Only below a package's top level, so a distribution that is itself named tests
        # survives; `testing` dirs stay (numpy imports numpy.testing on demand).
        doomed += [d for d in pkg.rglob("*") if d.is_dir() and d.name in ("tests", "test")]
    doomed += [site / "onnxruntime" / name for name in ORT_UNUSED]
    doomed += [site / "numpy" / "_core" / "include", site / "numpy" / "random" / "_examples"]
    if not (site / "scipy").exists():
        # scipy's array_api_compat does `from numpy import *`, and numpy's __all__ names f2py.
        doomed.append(site / "numpy" / "f2py")
    doomed += [site / "scipy" / name for name in SCIPY_UNUSED]
    doomed += site.rglob("__pycache__")
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    for pattern in ("*.pyc", *SOURCE_PATTERNS):
        for f in site.rglob(pattern):
            if f.is_file():
                f.unlink()


def remove_unused(site: Path, names: list[str]) -> None:
    """Remove these top-level packages, and the metadata of distributions that held only them
    (so nothing claims to be installed that is not)."""
    for name in names:
        for folder in (site / name, site / f"{name}.libs"):
            shutil.rmtree(folder, ignore_errors=True)
        (site / f"{name}.py").unlink(missing_ok=True)
    for info in site.glob("*.dist-info"):
        record = (info / "RECORD").read_text().splitlines() if (info / "RECORD").exists() else []
        tops = {Path(line.split(",")[0]).parts[0] for line in record if line}
        # Not counted: the metadata itself, bundled libraries, console scripts (../../bin).
        tops = {t.removesuffix(".py") for t in tops
                if t != ".." and not t.endswith((".dist-info", ".libs"))}
        if tops and tops <= set(names):
            shutil.rmtree(info)


def size(path: Path) -> int:
    # Lambda counts unzipped bytes, so file sizes, not disk blocks.
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def code_size(src: Path = CODE_SRC) -> int:
    """The functions' own code as deployed: labelloop's files without bytecode caches."""
    return sum(f.stat().st_size for f in src.rglob("*")
               if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")


def sizes_by_package(site: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in site.iterdir():
        name = "*.dist-info" if entry.name.endswith(".dist-info") else entry.name
        name = name.removesuffix(".py")
        out[name] = out.get(name, 0) + (size(entry) if entry.is_dir() else entry.stat().st_size)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def check_forbidden(site: Path, forbid: list[str]) -> None:
    found = [n for n in forbid if (site / n).exists() or (site / f"{n}.py").exists()]
    if found:
        raise SystemExit(f"layer {site.parent.name} contains {', '.join(found)}, which the "
                         "function using it must not need: check [project].dependencies")


def check_required(site: Path, require: list[str]) -> None:
    missing = [n for n in require if not (site / n / "__init__.py").exists()]
    if missing:
        raise SystemExit(f"layer {site.parent.name} lacks {', '.join(missing)}")


def staging_dir(out: Path, target: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=out))
    # mkdtemp makes it 0700, and zip keeps modes: Lambda's runtime user could not read /opt.
    staging.chmod(0o755)
    return staging


def swap_into_place(staging: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def build_packages(name: str, args, out: Path) -> Path:
    spec = LAYERS[name]
    target = out / f"{name}-py{args.python}-{args.platform}"
    stamp = {"requirements": requirements(spec["extras"], args.with_boto3, spec["without"]),
             "unused": spec["unused"],
             "python": args.python, "platform": args.platform, "recipe": RECIPE_VERSION}
    stamp_file = f".{name}-layer.json"  # per layer: all layers unpack into the same /opt
    if (target / stamp_file).exists() and json.loads((target / stamp_file).read_text()) == stamp:
        print(f"{target.relative_to(out.parent)}: up to date")
        check_forbidden(target / "python", spec["forbid"])
        check_required(target / "python", spec["require"])
        return target
    print(f"installing {len(stamp['requirements'])} requirements into {target} …")
    # Staged beside the target (same filesystem, so the final rename is atomic): a failed or
    # refused build never leaves a half-filled layer folder.
    staging = staging_dir(out, target)
    try:
        pip_install(staging / "python", stamp["requirements"], args.python, args.platform)
        prune(staging / "python")
        remove_unused(staging / "python", spec["unused"])
        check_forbidden(staging / "python", spec["forbid"])
        check_required(staging / "python", spec["require"])
        (staging / stamp_file).write_text(json.dumps(stamp, indent=2) + "\n")
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_encoder_layer(out: Path) -> Path:
    if not (ENCODER_SRC / "manifest.json").exists():
        raise SystemExit(f"no encoder at {ENCODER_SRC}: run `python scripts/build_encoder.py`")
    target = out / "encoder-layer"
    staging = staging_dir(out, target)
    try:
        for src_dir in (ENCODER_SRC, ACCURATE_SRC, IMAGE_SRC):
            if not (src_dir / "manifest.json").exists():
                continue  # optional: without it, functions cannot pick that encoder
            manifest = json.loads((src_dir / "manifest.json").read_text())
            (staging / src_dir.name).mkdir()
            for fname in ["manifest.json", *manifest["files"]]:
                if src_dir == ACCURATE_SRC and fname == "model.onnx":
                    continue  # 110 MB: over the budget; the stack ships it as an S3 asset
                src, dst = src_dir / fname, staging / src_dir.name / fname
                try:
                    os.link(src, dst)  # the model is 30+ MB: no need for a second copy on disk
                except OSError:
                    shutil.copy2(src, dst)
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=LAMBDA_PYTHON, help="target Python, e.g. 3.12")
    ap.add_argument("--platform", default="manylinux_2_28_x86_64",
                    help="wheel platform tag (arm64 Lambda: manylinux_2_28_aarch64)")
    ap.add_argument("--out", type=Path, default=ROOT / "layers")
    ap.add_argument("--with-boto3", action=argparse.BooleanOptionalAction, default=None,
                    help=f"bundle boto3 (default: only when --python is not {LAMBDA_PYTHON})")
    args = ap.parse_args(argv)
    if args.with_boto3 is None:
        args.with_boto3 = args.python != LAMBDA_PYTHON
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    layers = {ENCODER_LAYER: build_encoder_layer(out)}
    for name in LAYERS:
        layers[name] = build_packages(name, args, out)
    layer_mb = {name: size(path) / MB for name, path in layers.items()}
    code_mb = code_size() / MB
    function_mb = {fn: code_mb + sum(layer_mb[n] for n in names)
                   for fn, names in FUNCTIONS.items()}

    tables = {name: sizes_by_package(layers[name] / "python") for name in LAYERS}
    width = max(len(k) for t in tables.values() for k in t) + 2
    width = max(width, *(len(f"{fn}: {' + '.join(n)} + code") + 2
                          for fn, n in FUNCTIONS.items()))
    for name, by_pkg in tables.items():
        print(f"\n{name + ' layer':<{width}}{'MB':>8}")
        for pkg, n in by_pkg.items():
            if n >= MB // 2:
                print(f"  {pkg:<{width - 2}}{n / MB:>8.2f}")
        rest = [n for n in by_pkg.values() if n < MB // 2]
        if rest:
            print(f"  {f'({len(rest)} more, under 0.5 each)':<{width - 2}}{sum(rest) / MB:>8.2f}")
    print(f"\n{'layer / function (unzipped)':<{width}}{'MB':>8}")
    for name, mb in layer_mb.items():
        print(f"{name + ' layer':<{width}}{mb:>8.2f}")
    print(f"{'code (functions/labelloop)':<{width}}{code_mb:>8.2f}")
    for fn, names in FUNCTIONS.items():
        label = f"{fn}: {' + '.join(names)} + code"
        print(f"{label:<{width}}{function_mb[fn]:>8.2f}   limit {LIMIT_MB}")
    print()
    summary = {
        "layers_mb": {name: round(mb, 1) for name, mb in layer_mb.items()},
        "code_mb": round(code_mb, 2),
        "functions_mb": {fn: round(mb, 1) for fn, mb in function_mb.items()},
        "function_layers": FUNCTIONS,
        "limit_mb": LIMIT_MB, "python": args.python, "platform": args.platform,
        "folders": {name: path.name for name, path in layers.items()},
    }
    print(json.dumps(summary))
    over = {fn: mb for fn, mb in function_mb.items() if mb > LIMIT_MB}
    if over:
        raise SystemExit("over Lambda's {} MB unzipped limit: {}".format(
            LIMIT_MB, ", ".join(f"{fn} ({mb:.1f} MB: {' + '.join(FUNCTIONS[fn])} + code)"
                                for fn, mb in over.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
