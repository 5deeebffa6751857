"""Export EfficientNet-Lite0's pooled features to ONNX (runs in the build-only torch venv).

    python export_image_encoder.py CODE_DIR WEIGHTS OUT.onnx [--reference IMAGES.npz OUT.npz]

CODE_DIR holds the `efficientnet_lite_pytorch` package, WEIGHTS the ImageNet state dict. The
graph maps `pixels` [N, 3, 224, 224] (normalised, see PREPROCESS) to `features` [N, 1280]: the
global average pool of the last convolution, before dropout and the ImageNet classifier.

With --reference, the torch model also embeds the decoded uint8 images of IMAGES.npz, each
preprocessed here with torch's own ops (resize the short side with antialiased bilinear, centre
crop, normalise): the reference that labelloop's Pillow + ONNX path is tested against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

# TF EfficientNet-Lite's input convention, kept by the converted weights: (x - 127) / 128.
MEAN, STD = 127.0, 128.0
SIZE, RESIZE = 224, 256


class PooledFeatures(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Not set_swish(): it swaps the Lite models' ReLU6 for Swish, and the outputs are noise.
        return self.net._avg_pooling(self.net.extract_features(pixels)).flatten(1)


def reference_pixels(image: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(image).permute(2, 0, 1).float()[None]
    h, w = t.shape[-2:]
    scale = RESIZE / min(h, w)
    t = torch.nn.functional.interpolate(t, size=(round(h * scale), round(w * scale)),
                                        mode="bilinear", antialias=True, align_corners=False)
    top, left = (t.shape[-2] - SIZE) // 2, (t.shape[-1] - SIZE) // 2
    return (t[..., top:top + SIZE, left:left + SIZE] - MEAN) / STD


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("code_dir", type=Path)
    p.add_argument("weights", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--reference", nargs=2, type=Path, metavar=("IMAGES", "OUT"))
    args = p.parse_args()
    sys.path.insert(0, str(args.code_dir))
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model = PooledFeatures(net).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), str(args.out),
                      input_names=["pixels"], output_names=["features"],
                      dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                      opset_version=17, dynamo=False)
    if args.reference:
        images, out = args.reference
        raw = np.load(images)
        with torch.no_grad():
            feats = {k: model(reference_pixels(raw[k]))[0].numpy() for k in raw.files}
        np.savez(out, **feats)


if __name__ == "__main__":
    main()
