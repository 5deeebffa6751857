"""A batch item's `data` as the batch worker takes it: a Text function's text, or an Image
function's picture, given as a data URI or as an object the user put under the function's input
prefix in the stack's bucket (`s3://<bucket>/inputs/<function id>/…`: a message stays small, and
a key elsewhere, another function's pictures included, is refused). URLs are not fetched here:
a batch's thousands of items would make the worker a crawler.

Checking happens in two steps, so that a bad item costs only its own line: `checked` (the
reference, when the part is read) and `embedded` (bytes loaded and decoded per slab, which keeps
a slab's pictures, not a part's, in memory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from labelloop import imaging
from labelloop.container import Deps
from labelloop.data.objects import input_prefix
from labelloop.domain import FunctionItem
from labelloop.encoder import EMPTY_TOKENS, Features
from labelloop.errors import BadRequest, NotFound
from labelloop.image_source import image_bytes
from labelloop.usecases.inputs import IMAGE, IMAGE_REF, checked_text

# An object given by key: a large phone photo is 5-10 MB; the decoder's pixel limit guards
# against what decompresses beyond that.
MAX_INPUT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Picture:
    """An Image function's item, checked but not loaded."""

    raw: bytes | None = None  # from a data URI
    key: str | None = None  # an object of the function's input prefix


def checked(d: Deps, fn: FunctionItem, data) -> str | Picture:
    """The item's text, or its picture's reference; a BadRequest naming `data` otherwise."""
    if fn.input != IMAGE:
        return checked_text(data)
    if isinstance(data, str) and data.startswith("s3://"):
        bucket, _, key = data.removeprefix("s3://").partition("/")
        prefix = input_prefix(fn.id)
        if bucket != d.settings.bucket or not key.startswith(prefix) or key == prefix:
            raise BadRequest(f"data: an s3:// item must name an object under "
                             f"s3://{d.settings.bucket}/{prefix}")
        return Picture(key=key)
    if isinstance(data, str) and data.startswith(("https://", "http://")):
        raise BadRequest("data: batch invoke takes data URIs and s3:// keys, not URLs "
                         "(invoke one at a time for a URL)")
    return Picture(raw=image_bytes(data))  # a data URI, or the 400 for anything else


@dataclass
class Embedded:
    """A slab's items after loading and embedding."""

    ok: list[int] = field(default_factory=list)  # indices into the slab, in order
    data: list[str] = field(default_factory=list)  # what each one's invoke record stores
    features: Features | None = None  # one row per ok item
    # (sha256, bytes, content type) of each picture, to keep before its record is written.
    pictures: list[tuple[str, bytes, str]] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # index -> the item's error


def embedded(d: Deps, fn: FunctionItem, items: list[str | Picture],
             batch_size: int) -> Embedded:
    """A slab's items embedded in encoder batches of `batch_size`; a picture that cannot be
    loaded or decoded is an error of its own item."""
    encoder = d.encoders[fn.encoder]
    if fn.input != IMAGE:
        return Embedded(list(range(len(items))), list(items),
                        encoder.featurize(items, batch_size))
    out, pixels = Embedded(), []
    for k, picture in enumerate(items):
        try:
            raw = picture.raw if picture.raw is not None else d.objects.get_input(
                picture.key, MAX_INPUT_BYTES)
            pixels.append(imaging.preprocess(raw))
        except NotFound:
            out.errors[k] = f"data: no object s3://{d.settings.bucket}/{picture.key}"
        except BadRequest as err:
            out.errors[k] = err.message
        except imaging.ImageError as err:
            out.errors[k] = f"data: {err}"
        else:
            digest = hashlib.sha256(raw).hexdigest()
            out.ok.append(k)
            out.data.append(IMAGE_REF + digest)
            out.pictures.append((digest, raw, f"image/{imaging.sniff(raw).lower()}"))
    if out.ok:
        embeddings = np.concatenate([encoder.embed_pixels(np.stack(pixels[i:i + batch_size]))
                                     for i in range(0, len(pixels), batch_size)])
        out.features = Features(embeddings, [EMPTY_TOKENS] * len(out.ok))
    return out
