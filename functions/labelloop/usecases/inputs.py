"""A request's `data` as a function of its input kind takes it: checked, embedded, and what is
stored for it.

A Text function stores the text itself. An Image function stores `image:<sha256>`, the image's
bytes going to S3 under that digest (`data.objects.image_key`): samples and invoke records stay
small, and the same picture twice is the same stored data (the duplicate check by content,
as for text).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from labelloop import imaging, urlfetch
from labelloop.container import Deps
from labelloop.domain import FunctionItem, data_hash, encode_views
from labelloop.encoder import Features
from labelloop.errors import BadRequest
from labelloop.image_source import image_bytes

TEXT, IMAGE = "Text", "Image"
INPUTS = (TEXT, IMAGE)
IMAGE_REF = "image:"
# A text is stored whole (samples, invoke records: DynamoDB items of at most 400 KB) and read
# only up to the encoder's window (256 or 384 tokens), so this is far more than any use.
MAX_TEXT = 50_000


@dataclass(frozen=True)
class Input:
    data: str  # what samples and invoke records store
    features: Features
    image: bytes | None = None  # an Image function's bytes, to keep under the digest
    content_type: str | None = None
    views: bytes | None = None  # an image's training views (`encode_views`), when asked for
    cache_hit: bool | None = None  # features from the invoke cache (None: not looked up)


def checked_text(data, field: str = "data") -> str:
    """A Text function's input, checked (shared by samples, invoke and batch invoke)."""
    if not isinstance(data, str):
        raise BadRequest(f"{field}: must be a string for Text functions")
    if not data.strip():
        raise BadRequest(f"{field}: must not be empty")
    if len(data) > MAX_TEXT:
        raise BadRequest(f"{field}: at most {MAX_TEXT} characters")
    return data


def read(d: Deps, fn: FunctionItem, data, field: str = "data", views: bool = False,
         cached: bool = False) -> Input:
    """Checked and embedded; a 400 naming `field` for what the function cannot take.
    `views`: an image's training views too (for a sample created with its annotation).
    `cached`: features may come from, and go to, the invoke cache (`feature_cache`)."""
    encoder = d.encoders[fn.encoder]
    if fn.input != IMAGE:
        text = checked_text(data, field)
        features, hit = _featurized(d, fn, text, data_hash(text), cached)
        return Input(text, features, cache_hit=hit)
    raw = image_bytes(data, field, urlfetch.Policy(
        allow_loopback=d.settings.image_urls_allow_loopback))
    digest = hashlib.sha256(raw).hexdigest()
    extra, hit = None, None
    try:
        if views:
            features, extra = encoder.featurize_with_views(raw)
        else:
            features, hit = _featurized(d, fn, raw, digest, cached)
    except imaging.ImageError as err:
        raise BadRequest(f"{field}: {err}") from None
    # Decoded (or seen before), so one of imaging.FORMATS, whose magic numbers sniff knows.
    return Input(IMAGE_REF + digest, features, raw,
                 f"image/{imaging.sniff(raw).lower()}",
                 encode_views(extra) if extra is not None else None, cache_hit=hit)


def _featurized(d: Deps, fn: FunctionItem, data: str | bytes, digest: str, cached: bool
                ) -> tuple[Features, bool | None]:
    """(features, whether they came from the invoke cache; None when not looked up).
    `digest`: the data's sha256, as the caller has it anyway."""
    encoder = d.encoders[fn.encoder]
    if not cached or d.feature_cache.entries <= 0:
        return encoder.featurize_one(data), None
    k = (fn.id, fn.encoder, digest)
    found = d.feature_cache.get(k)
    if found is not None:
        return found, True
    features = encoder.featurize_one(data)
    d.feature_cache.put(k, features)
    return features, False


def keep(d: Deps, fn: FunctionItem, inp: Input) -> None:
    """Store an image's bytes; before any item that refers to them is written."""
    if inp.image is not None:
        d.objects.put_image(fn.id, image_digest(inp.data), inp.image, inp.content_type)


def image_digest(data: str) -> str:
    return data.removeprefix(IMAGE_REF)


def is_image(data: str) -> bool:
    return data.startswith(IMAGE_REF)


def annotated(d: Deps, fn: FunctionItem, data: str) -> tuple[Features, bytes | None]:
    """Stored data about to be an annotated sample (an invoke record's, by feedback; a
    captured picture's, by review): its features and, for an image, its training views."""
    encoder = d.encoders[fn.encoder]
    if is_image(data):
        raw, _ = d.objects.get_image(fn.id, image_digest(data))
        features, views = encoder.featurize_with_views(raw)
        return features, encode_views(views)
    return encoder.featurize_one(data), None
