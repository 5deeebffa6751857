"""Image bytes → the image encoder's input: decode, orient, flatten onto white, resize, crop.

Pillow only (no torch): the same steps as the reference the encoder was exported with
(scripts/export_image_encoder.py): the short side resized to 256 with antialiased bilinear, a
centre crop of 224, then (x - 127) / 128 per channel. What cannot be decoded is an
`ImageError`, whose message says why (the use cases answer it as a 400 naming `data`).
"""

from __future__ import annotations

import io
import math

import numpy as np

# What the encoder was trained and exported for (manifest.json repeats them).
SIZE, RESIZE = 224, 256
# Bumped when these steps change what they output (benchmarks key cached embeddings on it).
VERSION = 2
MEAN, STD = 127.0, 128.0
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# Decompression bombs: a small file that decodes to gigabytes. 40 MP is a large phone photo.
MAX_PIXELS = 40_000_000
ORIENTATION = 0x0112  # the EXIF tag
# Training views (`view_pixels`): four shifted crops and two small turns.
SHIFT = 0.0625
CORNERS = ((-1, -1), (1, -1), (-1, 1), (1, 1))
ANGLES = (-10.0, 10.0)
N_VIEWS = len(CORNERS) + len(ANGLES)


class ImageError(ValueError):
    """Bytes that are not an image this product reads; the message says why."""


def sniff(data: bytes) -> str | None:
    """The format the bytes say they are (their magic numbers), one of FORMATS, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    return None


def decode(data: bytes):
    """A PIL image in RGB, upright, transparency flattened onto white; ImageError otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"not an image in a supported format ({', '.join(FORMATS)})") from None
    except Image.DecompressionBombError as err:  # Pillow's own limit is higher than ours
        raise ImageError(f"too many pixels (more than {MAX_PIXELS:,})") from err
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"too many pixels: {img.width}x{img.height} (more than {MAX_PIXELS:,})")
    try:
        _draft(img)
        img.load()
        if img.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies even when upright
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ImageError(f"the {img.format} data cannot be decoded ({err})") from None
    return _to_rgb(img)


def _draft(img) -> None:
    """Let JPEG decode at 1/2, 1/4 or 1/8 scale when the short side stays >= RESIZE: the same
    pixels the resize would keep, at a fraction of the decoding work."""
    if img.format == "JPEG":
        scale = RESIZE / min(img.size)
        img.draft("RGB", (math.ceil(img.width * scale), math.ceil(img.height * scale)))


def _to_rgb(img):
    from PIL import Image

    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: keep its range
        grey = np.asarray(img, dtype=np.float32)
        top = float(grey.max()) or 1.0
        img = Image.fromarray((grey * (255.0 / top)).astype(np.uint8))
    return img if img.mode == "RGB" else img.convert("RGB")


def pixels(img) -> np.ndarray:
    """The encoder's input for one RGB image: float32 [3, SIZE, SIZE].

    Resize-then-crop done as one resize of the region the crop keeps (a third less work than
    resizing the whole picture; the torch reference test holds it to the two-step result)."""
    w, h = img.size
    side = SIZE * min(w, h) / RESIZE  # the crop's side, in the picture's pixels
    return _crop(img, (w - side) / 2, (h - side) / 2, side)


def view_pixels(img) -> np.ndarray:
    """Training views of one RGB image, float32 [N_VIEWS, 3, SIZE, SIZE]: the centre crop
    moved toward each corner by SHIFT of the short side, and the picture turned by each of
    ANGLES (the corners it uncovers filled with its border's colour). No flips: a mirrored
    digit, letter or arrow is another thing."""
    from PIL import Image

    w, h = img.size
    side = SIZE * min(w, h) / RESIZE
    step = SHIFT * min(w, h)
    out = []
    for dx, dy in CORNERS:
        left = min(max((w - side) / 2 + dx * step, 0.0), w - side)
        top = min(max((h - side) / 2 + dy * step, 0.0), h - side)
        out.append(_crop(img, left, top, side))
    fill = _border_colour(img)
    for angle in ANGLES:
        out.append(pixels(img.rotate(angle, Image.Resampling.BILINEAR, fillcolor=fill)))
    return np.stack(out)


def _crop(img, left: float, top: float, side: float) -> np.ndarray:
    from PIL import Image

    img = img.resize((SIZE, SIZE), Image.Resampling.BILINEAR,
                     box=(left, top, left + side, top + side))
    # In place: two fresh 600 KB temporaries per crop cost 0.64 ms of 1.58 in a micro-
    # benchmark (bench_invoke --input image: preprocessing 1.36 -> 1.21 ms at p50).
    arr = np.asarray(img, dtype=np.float32)
    arr -= MEAN
    arr /= STD
    return arr.transpose(2, 0, 1)


def _border_colour(img) -> tuple[int, int, int]:
    arr = np.asarray(img)
    edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def preprocess(data: bytes) -> np.ndarray:
    return pixels(decode(data))
