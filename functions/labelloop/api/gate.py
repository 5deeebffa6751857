"""The input gate: what every request must be before any route, parser or validator sees it.

It runs in the Lambda entry point, ahead of powertools, because powertools parses the body
while validating, before any middleware: a body nested ten thousand levels deep would recurse
there, and bytes that are not UTF-8 would fail to decode there. The gate answers 413 for bodies
over the limit and 400 naming the field for text that is not Unicode: invalid UTF-8 (JSON and
form bodies, query strings) and lone surrogates, which JSON can spell (`"\\udc80"`) but no
encoder, tokenizer or DynamoDB attribute accepts. Every route's JSON body is an object, and
powertools would validate the first element of an array as that object (its list-to-one
rule for query values applies to bodies too): a JSON array is refused here, so a list of
samples posted to `POST …/samples` is a 400, not one sample created and the rest lost.
Routes then see the body as UTF-8 text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import unquote_to_bytes

import numpy as np

from labelloop.errors import BadRequest, DomainError, PayloadTooLarge

MAX_DEPTH = 32
# Content types whose bodies are text; others (images, archives) pass through untouched.
_TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# A surrogate can only enter through a JSON escape: strict UTF-8 decoding refuses encoded ones.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


_IMAGE_ROUTE = re.compile(r"/v1/functions/[^/]+/(samples|invoke)/?")


def takes_images(event: dict) -> bool:
    """Whether the request is one that may carry an image (a sample or an invoke)."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    return method == "POST" and bool(_IMAGE_ROUTE.fullmatch(event.get("rawPath") or ""))


def admit(event: dict, max_body_bytes: int) -> dict:
    """The event with its body as UTF-8 text, checked; a DomainError (400/413) otherwise."""
    _check_query(event)
    body = event.get("body")
    if not body:
        return event
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").lower()
    based = bool(event.get("isBase64Encoded"))
    if len(body) * (3 / 4 if based else 1) > max_body_bytes:
        raise PayloadTooLarge(f"body: larger than {max_body_bytes} bytes")
    if not content_type.startswith(_TEXT_TYPES):
        return event
    text = _text(body, based)
    if "x-www-form-urlencoded" in content_type:
        _check_pairs(text, "body field")
    elif "[" in text or "{" in text:
        if text.lstrip().startswith("["):
            raise BadRequest("body: a JSON object, not an array (many samples: POST "
                             "…/samples/batch with {\"samples\": [...]})")
        _check_json(text)
    return {**event, "body": text, "isBase64Encoded": False} if based else event


def refusal(err: DomainError) -> dict:
    """The gate's answer, in payload format 2.0 (the app's own errors have the same shape)."""
    return {"statusCode": err.status, "isBase64Encoded": False,
            "headers": {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
            "body": json.dumps({"message": err.message})}


def _text(body: str, based: bool) -> str:
    if not based:
        try:
            body.encode("utf-8")
        except UnicodeEncodeError as err:
            raise BadRequest(f"body: not valid Unicode text (at character {err.start})") from err
        return body
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BadRequest("body: not valid base64") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"body: not valid UTF-8 (at byte {err.start})") from err


def _check_json(text: str) -> None:
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise BadRequest(f"body: nested deeper than {MAX_DEPTH} levels")
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        value = json.loads(text)
    except ValueError:
        return  # not JSON after all: the route's validation says so
    where = _lone_surrogate(value, "")
    if where is not None:
        raise BadRequest(f"{where}: not valid Unicode text (a lone surrogate)")


def _depth(text: str) -> int:
    """The deepest bracket nesting outside strings, in C-speed passes (no recursion)."""
    stripped = np.frombuffer(_STRING.sub('""', text).encode(), np.uint8)
    steps = np.isin(stripped, _OPEN).astype(np.int32) - np.isin(stripped, _CLOSE)
    return int(np.cumsum(steps).max(initial=0))


def _lone_surrogate(value, path: str) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, e.g. `[3].data`."""
    if isinstance(value, str):
        return None if _is_unicode(value) else (path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{path}.{key}" if path else key
            if not _is_unicode(key):
                return path or "body"
            found = _lone_surrogate(item, at)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_query(event: dict) -> None:
    _check_pairs(event.get("rawQueryString") or "", "query parameter")
    for name, value in (event.get("queryStringParameters") or {}).items():
        if not (_is_unicode(name) and _is_unicode(value)):
            raise BadRequest(f"{_printable(name)}: not valid Unicode text")


def _check_pairs(encoded: str, what: str) -> None:
    """Each `name=value` of a query string or form body decodes as strict UTF-8."""
    for pair in filter(None, encoded.split("&")):
        name, _, value = pair.partition("=")
        for part in (name, value):
            try:
                unquote_to_bytes(part.replace("+", " ")).decode("utf-8")
            except UnicodeDecodeError as err:
                raise BadRequest(f"{_printable(_unquote(name))}: not valid UTF-8 in this "
                                 f"{what}") from err


def _unquote(part: str) -> str:
    return unquote_to_bytes(part.replace("+", " ")).decode("utf-8", "replace")


def _printable(name: str) -> str:
    return name.encode("utf-8", "replace").decode("utf-8")[:64] or "(unnamed)"
