"""Build the Lambda layers: the Python packages of the invoke path, and the encoder files.

    python scripts/build_layers.py [--python 3.12] [--platform manylinux_2_28_x86_64] [--out layers]

Output (git-ignored), each folder zipped as one layer (Lambda unpacks layers into /opt):
  <out>/runtime-py<python>-<platform>/python/...  -> /opt/python (on sys.path in Lambda)
  <out>/encoder-layer/encoder/...                 -> /opt/encoder (labelloop.encoder looks there)

The runtime layer must serve the invoke path without scikit-learn or scipy, and fit with the
encoder into Lambda's 250 MB unzipped limit; the build fails otherwise. Prints a size table and
a one-line JSON summary. A build whose stamp matches (requirements, python, platform, recipe)
is reused.
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

ROOT = Path(__file__).resolve().parents[1]
ENCODER_SRC = ROOT / "layers" / "encoder"
LAMBDA_PYTHON = "3.12"
# AWS states the limit as 250 MB and enforces it as 262,144,000 bytes, i.e. MiB.
LIMIT_MB = 250
MB = 1 << 20
# The Lambda Python runtime provides these; a copy in the layer would only spend the budget.
# An interpreter other than Lambda's (local runs, emulators) has no such copy, so it gets them.
LAMBDA_PROVIDED = {"boto3", "botocore", "s3transfer"}
# One entry per layer: optional-dependency groups added to [project].dependencies, and the
# import names the layer must not contain. A training layer would be
#   "training": {"extras": ["train"], "forbid": []},
LAYERS = {
    "runtime": {"extras": [], "forbid": ["sklearn", "scipy"]},
}
# Bump when the pruning or install recipe changes, so that existing builds are redone.
RECIPE_VERSION = 1
# Never imported on the inference path: quantisation/conversion tooling and sample data.
ORT_UNUSED = ("tools", "transformers", "quantization", "datasets")


def requirements(extras: list[str], with_boto3: bool) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    if not with_boto3:
        reqs = [r for r in reqs if dist_name(r) not in LAMBDA_PROVIDED]
    return reqs


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
    """Drop what the invoke path never loads: tests, stubs, headers, static libs, tooling."""
    doomed = [site / "bin"]  # console scripts with the build machine's shebang
    for pkg in (p for p in site.iterdir() if p.is_dir()):
        # Only below a package's top level, so a distribution that is itself named tests
        # survives; `testing` dirs stay (numpy imports numpy.testing on demand).
        doomed += [d for d in pkg.rglob("*") if d.is_dir() and d.name in ("tests", "test")]
    doomed += [site / "onnxruntime" / name for name in ORT_UNUSED]
    doomed += [site / "numpy" / "f2py", site / "numpy" / "_core" / "include"]
    doomed += site.rglob("__pycache__")
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    for pattern in ("*.pyc", "*.pyi", "*.h", "*.a"):
        for f in site.rglob(pattern):
            f.unlink(missing_ok=True)


def size(path: Path) -> int:
    # Lambda counts unzipped bytes, so file sizes, not disk blocks.
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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
                         "invoke path must not need: check [project].dependencies")


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
    stamp = {"requirements": requirements(spec["extras"], args.with_boto3),
             "python": args.python, "platform": args.platform, "recipe": RECIPE_VERSION}
    stamp_file = f".{name}-layer.json"  # per layer: all layers unpack into the same /opt
    if (target / stamp_file).exists() and json.loads((target / stamp_file).read_text()) == stamp:
        print(f"{target.relative_to(out.parent)}: up to date")
        check_forbidden(target / "python", spec["forbid"])
        return target
    print(f"installing {len(stamp['requirements'])} requirements into {target} …")
    # Staged beside the target (same filesystem, so the final rename is atomic): a failed or
    # refused build never leaves a half-filled layer folder.
    staging = staging_dir(out, target)
    try:
        pip_install(staging / "python", stamp["requirements"], args.python, args.platform)
        prune(staging / "python")
        check_forbidden(staging / "python", spec["forbid"])
        (staging / stamp_file).write_text(json.dumps(stamp, indent=2) + "\n")
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_encoder_layer(out: Path) -> Path:
    if not (ENCODER_SRC / "manifest.json").exists():
        raise SystemExit(f"no encoder at {ENCODER_SRC}: run `python scripts/build_encoder.py`")
    manifest = json.loads((ENCODER_SRC / "manifest.json").read_text())
    target = out / "encoder-layer"
    staging = staging_dir(out, target)
    try:
        (staging / "encoder").mkdir()
        for fname in ["manifest.json", *manifest["files"]]:
            src, dst = ENCODER_SRC / fname, staging / "encoder" / fname
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

    encoder = build_encoder_layer(out)
    runtime = build_packages("runtime", args, out)
    by_pkg = sizes_by_package(runtime / "python")
    runtime_mb, encoder_mb = size(runtime) / MB, size(encoder) / MB
    total_mb = runtime_mb + encoder_mb

    width = max(map(len, by_pkg)) + 2
    print(f"\n{'package':<{width}}{'MB':>8}")
    for pkg, n in by_pkg.items():
        print(f"{pkg:<{width}}{n / MB:>8.2f}")
    print(f"{'runtime layer':<{width}}{runtime_mb:>8.2f}")
    print(f"{'encoder layer':<{width}}{encoder_mb:>8.2f}")
    print(f"{'total (unzipped)':<{width}}{total_mb:>8.2f}   limit {LIMIT_MB}\n")
    summary = {"runtime_mb": round(runtime_mb, 1), "encoder_mb": round(encoder_mb, 1),
               "total_mb": round(total_mb, 1), "limit_mb": LIMIT_MB, "python": args.python,
               "platform": args.platform}
    print(json.dumps(summary))
    if total_mb > LIMIT_MB:
        raise SystemExit(f"runtime + encoder layers are {total_mb:.1f} MB unzipped, over "
                         f"Lambda's {LIMIT_MB} MB limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
