"""A small HTTP client for the labelloop API, standard library only.

Safe to share between threads: each request opens its own connection, and only the token is
shared (under a lock).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

_NEXT_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
BATCH_ENDED = ("Succeeded", "Failed")


class ApiError(Exception):
    """The API answered with a 4xx or 5xx status."""

    def __init__(self, status: int, message: str, body: Any = None):
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.body = body


class Unreachable(OSError):
    """No answer from the server, even after retrying."""


# A 429 that asks to wait longer than this (the token route's lockout after failed attempts)
# is answered at once: no command should hang for minutes.
MAX_RETRY_AFTER = 30.0


def _retry_after(headers) -> float:
    """Retry-After in seconds (delta-seconds only; an HTTP date or nothing counts as 0)."""
    try:
        return max(0.0, float((headers or {}).get("Retry-After") or 0))
    except ValueError:
        return 0.0


def _p(segment: str | int) -> str:
    return quote(str(segment), safe="")


class Client:
    def __init__(self, url: str, client_id: str, client_secret: str, timeout: float = 30,
                 retries: int = 3, backoff: float = 0.5):
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._token_lock = threading.Lock()

    # -- transport ------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None,
                query: dict[str, Any] | None = None, headers: dict[str, str] | None = None
                ) -> Any:
        return self._request(method, path, body, query, headers)[0]

    def paged(self, path: str, query: dict[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a list route, following `Link: <…>; rel="next"` headers."""
        url: str | None = self._url(path, query)
        while url:
            items, headers = self._request("GET", url, None, None)
            yield from items
            match = _NEXT_LINK.search(headers.get("Link") or "")
            url = self._url(match.group(1), None) if match else None

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        # Link headers are root-relative: joined to the base URL, as the Nyckel SDK does.
        url = path if path.startswith(("http://", "https://")) else self.url + path
        query = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{url}?{urlencode(query)}" if query else url

    def _request(self, method: str, path: str, body: Any, query: dict[str, Any] | None,
                 extra: dict[str, str] | None = None) -> tuple[Any, Any]:
        url = self._url(path, query)
        data = None if body is None else json.dumps(body).encode()
        for renewed in (False, True):
            headers = {**(extra or {}), "Authorization": f"Bearer {self._bearer()}",
                       "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                return self._send(method, url, data, headers)
            except ApiError as err:
                # A token can die before its expiry (e.g. a restarted local stack with a new
                # signing key): fetch a new one, once.
                if err.status != 401 or renewed:
                    raise
                with self._token_lock:
                    self._token = None
        raise AssertionError("unreachable")

    def _bearer(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_renew_at:
                form = urlencode({"grant_type": "client_credentials",
                                  "client_id": self.client_id,
                                  "client_secret": self.client_secret}).encode()
                answer, _ = self._send(
                    "POST", self.url + "/connect/token", form,
                    {"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"})
                ttl = float(answer.get("expires_in") or 300)
                # Renew early, so a token never expires between here and the server.
                self._token_renew_at = time.monotonic() + ttl - min(60.0, ttl / 2)
                self._token = answer["access_token"]
            return self._token

    def _send(self, method: str, url: str, data: bytes | None,
              headers: dict[str, str]) -> tuple[Any, Any]:
        """One request with a timeout, retried with exponential backoff and jitter on
        connection errors, 5xx and 429 (no sooner than its Retry-After; one that asks for
        more than MAX_RETRY_AFTER seconds is final); any other 4xx is final at once."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            at_least = 0.0
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return _decode(resp.read()), resp.headers
            except urllib.error.HTTPError as err:
                raw = err.read()
                at_least = _retry_after(err.headers) if err.code == 429 else 0.0
                if (err.code < 500 and err.code != 429) or last or at_least > MAX_RETRY_AFTER:
                    raise _api_error(err.code, err.reason, raw) from None
            except (urllib.error.URLError, OSError) as err:
                if last:
                    reason = getattr(err, "reason", err)
                    raise Unreachable(f"cannot reach {self.url}: {reason}") from None
            time.sleep(max(at_least, self.backoff * 2**attempt * (0.5 + random.random())))
        raise AssertionError("unreachable")

    # -- functions ------------------------------------------------------------------------

    def create_function(self, name: str, input: str = "Text", output: str = "Classification",
                        encoder: str | None = None) -> dict:
        body = {"name": name, "input": input, "output": output}
        return self.request("POST", "/v1/functions",
                            body if encoder is None else {**body, "encoder": encoder})

    def list_functions(self) -> list[dict]:
        return self.request("GET", "/v1/functions")

    def get_function(self, function_id: str) -> dict:
        return self.request("GET", f"/v1/functions/{_p(function_id)}")

    def update_function(self, function_id: str, **fields: Any) -> dict:
        return self.request("PUT", f"/v1/functions/{_p(function_id)}", fields)

    def delete_function(self, function_id: str) -> None:
        self.request("DELETE", f"/v1/functions/{_p(function_id)}")

    def metrics(self, function_id: str) -> dict:
        return self.request("GET", f"/v0.9/functions/{_p(function_id)}/metrics")

    # -- labels and samples ---------------------------------------------------------------

    def create_label(self, function_id: str, name: str,
                     description: str | None = None) -> dict:
        body = {"name": name, **({"description": description} if description else {})}
        return self.request("POST", f"/v1/functions/{_p(function_id)}/labels", body)

    def list_labels(self, function_id: str) -> list[dict]:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/labels")

    def create_sample(self, function_id: str, data: str, label_name: str | None = None,
                      external_id: str | None = None) -> dict:
        body: dict[str, Any] = {"data": data}
        if external_id is not None:
            body["externalId"] = external_id
        if label_name is not None:
            body["annotation"] = {"labelName": label_name}
        return self.request("POST", f"/v1/functions/{_p(function_id)}/samples", body)

    def create_samples(self, function_id: str, samples: list[dict], train: bool = True
                       ) -> list[dict]:
        """A bulk import (`{"data", "annotation"?, "externalId"?}` each, up to 1,000): per
        item, in order, `{"status": 200, "sample"}` or `{"status", "message"}`. `train`
        False: no training request (ask once after the last part, `train()`)."""
        return self.request("POST", f"/v1/functions/{_p(function_id)}/samples/batch",
                            {"samples": samples}, {} if train else {"train": "false"}
                            )["results"]

    def samples(self, function_id: str, batch_size: int = 100,
                sort_order: str = "descending") -> Iterator[dict]:
        return self.paged(f"/v1/functions/{_p(function_id)}/samples",
                          {"batchSize": batch_size, "sortOrder": sort_order})

    def get_sample(self, function_id: str, sample_id: str) -> dict:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/samples/{_p(sample_id)}")

    def similar(self, function_id: str, sample_id: str, batch_size: int = 20,
                in_review_queue: bool = False) -> list[dict]:
        """The samples nearest to this one by embedding, each with its `similarity`."""
        return self.request(
            "GET", f"/v1/functions/{_p(function_id)}/samples/{_p(sample_id)}/similar", None,
            {"batchSize": batch_size, "inReviewQueue": str(in_review_queue).lower()})

    def invokes(self, function_id: str, batch_size: int = 100) -> Iterator[dict]:
        """Stored invokes, newest first."""
        return self.paged(f"/v1/functions/{_p(function_id)}/invokes", {"batchSize": batch_size})

    def annotate(self, function_id: str, sample_id: str, label_name: str | None = None,
                 label_id: str | None = None) -> dict:
        """By label name or by label id."""
        return self.request(
            "PUT", f"/v1/functions/{_p(function_id)}/samples/{_p(sample_id)}/annotation",
            {"labelName": label_name} if label_id is None else {"labelId": label_id})

    def clear_annotation(self, function_id: str, sample_id: str) -> None:
        self.request(
            "DELETE", f"/v1/functions/{_p(function_id)}/samples/{_p(sample_id)}/annotation")

    def delete_sample(self, function_id: str, sample_id: str) -> None:
        self.request("DELETE", f"/v1/functions/{_p(function_id)}/samples/{_p(sample_id)}")

    # -- invoke, training, model versions -------------------------------------------------

    def invoke(self, function_id: str, data: str, label_count: int | None = None,
               capture: bool = True, cached: bool = True) -> dict:
        """`cached` False: the encoder runs even for an input the API has seen before."""
        return self.request("POST", f"/v1/functions/{_p(function_id)}/invoke", {"data": data},
                            {"labelCount": label_count,
                             **({} if capture else {"capture": "false"})},
                            None if cached else {"Cache-Control": "no-cache"})

    # -- batch invoke ---------------------------------------------------------------------

    def batch_invoke(self, function_id: str, items: list[dict], capture: bool = True) -> dict:
        """Submit a job: items [{"id"?, "data"}]; returns its status (`id`, `state`, …)."""
        return self.request("POST", f"/v1/functions/{_p(function_id)}/batch-invokes",
                            {"items": items, "capture": capture})

    def batch_job(self, function_id: str, job_id: str) -> dict:
        return self.request(
            "GET", f"/v1/functions/{_p(function_id)}/batch-invokes/{_p(job_id)}")

    def batch_results(self, function_id: str, job_id: str) -> Iterator[dict]:
        """The result lines of the job's finished parts, page by page."""
        path = f"/v1/functions/{_p(function_id)}/batch-invokes/{_p(job_id)}/results"
        after = None
        while True:
            page = self.request("GET", path, None, {"after": after})
            yield from page["results"]
            if page.get("next") is None:
                return
            after = page["next"]

    def wait_batch(self, function_id: str, job_id: str, timeout: float = 3600,
                   poll: float = 0.5) -> dict:
        """The job's status once it has ended (Succeeded or Failed)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.batch_job(function_id, job_id)
            if job["state"] in BATCH_ENDED:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"batch job {job_id} still {job['state']} after {timeout:g} s")
            time.sleep(poll)

    # -- review: the capture buffer, its policy, live accuracy ------------------------------

    def review_queue(self, function_id: str, strategy: str | None = None,
                     batch_size: int = 50) -> list[dict]:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/review", None,
                            {"strategy": strategy, "batchSize": batch_size})

    def annotate_many(self, function_id: str, annotations: list[dict]) -> list[dict]:
        """[{"sampleId": …, "labelName" or "labelId": …}] → one result per item."""
        return self.request("POST", f"/v1/functions/{_p(function_id)}/review/annotations",
                            {"annotations": annotations})["results"]

    def dismiss(self, function_id: str, sample_id: str) -> None:
        self.request("POST",
                     f"/v1/functions/{_p(function_id)}/review/{_p(sample_id)}/dismiss")

    def keep(self, function_id: str, sample_id: str) -> dict:
        """A suspected mislabel's label is right: it leaves the suspect queue."""
        return self.request("POST",
                            f"/v1/functions/{_p(function_id)}/review/{_p(sample_id)}/keep")

    def capture_policy(self, function_id: str) -> dict:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/capture")

    def set_capture_policy(self, function_id: str, strategies: dict[str, dict] | None = None,
                           near_duplicate_cosine: float | None = None,
                           spread_cosine: float | None = None,
                           label_cap: float | None = None,
                           drift_random_factor: float | None = None) -> dict:
        body: dict[str, Any] = {"strategies": strategies or {}}
        for key, value in (("nearDuplicateCosine", near_duplicate_cosine),
                           ("spreadCosine", spread_cosine), ("labelCap", label_cap),
                           ("driftRandomFactor", drift_random_factor)):
            if value is not None:
                body[key] = value
        return self.request("PUT", f"/v1/functions/{_p(function_id)}/capture", body)

    def live_accuracy(self, function_id: str) -> list[dict]:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/live-accuracy")

    # -- the decision policy ------------------------------------------------------------

    def thresholds(self, function_id: str, target_precision: float | None = None,
                   model_version: int | None = None, label: str | None = None) -> dict:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/thresholds", None,
                            {"targetPrecision": target_precision,
                             "modelVersion": model_version, "label": label})

    def set_thresholds(self, function_id: str, policy: dict) -> dict:
        return self.request("PUT", f"/v1/functions/{_p(function_id)}/thresholds", policy)

    def clear_thresholds(self, function_id: str) -> None:
        self.request("DELETE", f"/v1/functions/{_p(function_id)}/thresholds")

    def train(self, function_id: str, force: bool = False) -> dict:
        return self.request("POST", f"/v1/functions/{_p(function_id)}/train", {"force": force})

    def list_models(self, function_id: str) -> list[dict]:
        return self.request("GET", f"/v1/functions/{_p(function_id)}/models")

    def promote(self, function_id: str, version: int) -> dict:
        return self.request(
            "POST", f"/v1/functions/{_p(function_id)}/models/{_p(version)}/promote")

    def rollback(self, function_id: str) -> dict:
        return self.request("POST", f"/v1/functions/{_p(function_id)}/models/rollback")


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw.strip() else None


def _api_error(status: int, reason: str, raw: bytes) -> ApiError:
    try:
        body = _decode(raw)
    except ValueError:  # not JSON, e.g. a proxy's HTML page
        body = raw.decode(errors="replace")
    if isinstance(body, dict) and body.get("message"):
        message = str(body["message"])
    else:
        message = (body if isinstance(body, str) and body.strip() else reason) or "error"
        message = " ".join(str(message).split())[:300]
    return ApiError(status, message, body)
