"""An image function's `data` → the image's bytes: a data URI, or an https:// URL fetched
safely (`urlfetch`). What is neither, or lies about its type, is a 400 naming the field."""

from __future__ import annotations

import base64
import binascii
import re

from labelloop import imaging, urlfetch
from labelloop.errors import BadRequest

# data:image/<type>[;name=value…];base64,<payload>: the form the official SDK sends.
_DATA_URI = re.compile(r"data:image/([a-zA-Z0-9.+-]+)((?:;[^;,]*)*?);base64,", re.ASCII)
SUBTYPES = {"jpeg": "JPEG", "jpg": "JPEG", "pjpeg": "JPEG", "png": "PNG", "webp": "WEBP",
            "gif": "GIF", "bmp": "BMP", "x-ms-bmp": "BMP"}


def image_bytes(data, field: str = "data", policy: urlfetch.Policy | None = None) -> bytes:
    if not isinstance(data, str):
        raise BadRequest(f"{field}: must be a string for Image functions")
    if data.startswith("data:"):
        return _from_data_uri(data, field)
    if data.startswith(("https://", "http://")):
        try:
            return urlfetch.fetch(data, policy or urlfetch.Policy())
        except urlfetch.FetchRefused as err:
            raise BadRequest(f"{field}: {err}") from None
    raise BadRequest(f"{field}: an Image function takes a data URI "
                     "(data:image/jpeg;base64,…) or an https:// URL")


def _from_data_uri(data: str, field: str) -> bytes:
    match = _DATA_URI.match(data)
    if not match:
        raise BadRequest(f"{field}: not a base64 image data URI (data:image/<type>;base64,…)")
    declared = SUBTYPES.get(match.group(1).lower())
    if declared is None:
        raise BadRequest(f"{field}: image/{match.group(1)} is not supported "
                         f"(supported: {', '.join(sorted(set(SUBTYPES.values())))})")
    try:
        raw = base64.b64decode(data[match.end():], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{field}: the data URI's payload is not valid base64") from None
    if not raw:
        raise BadRequest(f"{field}: the data URI holds no image")
    actual = imaging.sniff(raw)
    if actual != declared:
        found = f"{actual} data" if actual else "no image format this product reads"
        raise BadRequest(f"{field}: declared image/{match.group(1)}, but holds {found}")
    return raw
