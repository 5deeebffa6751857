"""A local SQS event source mapping: receive a batch, invoke the handler, settle the batch.

Behaves as a mapping with ReportBatchItemFailures: successes are deleted, failures are retried,
and moto's redrive policy moves a message to the DLQ after its max receive count. Failures come
back after `retry_seconds` instead of the queue's visibility timeout (16 minutes for training),
so that local retries and redrives take seconds.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from labelloop.local import REGION, LambdaContext

log = logging.getLogger(__name__)

_WAIT_SECONDS = 1  # long poll; also how quickly a stop is noticed
IDLE_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"]


class _ItemFailure(BaseModel):
    itemIdentifier: str


class _BatchResponse(BaseModel):
    batchItemFailures: list[_ItemFailure] = []


def _lambda_attribute(value: dict) -> dict:
    """A message attribute as Lambda spells it (camelCase, binary as base64 text)."""
    out: dict = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return out


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """The event Lambda builds from ReceiveMessage's messages."""
    records = []
    for m in messages:
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {k: _lambda_attribute(v)
                                  for k, v in m.get("MessageAttributes", {}).items()},
        }
        if "MD5OfMessageAttributes" in m:
            record["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        record.update(md5OfBody=m["MD5OfBody"], eventSource="aws:sqs", eventSourceARN=queue_arn,
                      awsRegion=REGION)
        records.append(record)
    return {"Records": records}


def failed_ids(result, message_ids: set[str]) -> set[str]:
    """The messages to retry, read from a partial batch response."""
    try:
        failures = _BatchResponse.model_validate(result or {}).batchItemFailures
    except ValidationError:
        log.error("malformed batch response %.300r: the whole batch fails", result)
        return message_ids
    ids = {f.itemIdentifier for f in failures}
    if not ids <= message_ids:
        # Lambda treats an unknown or empty itemIdentifier as a failure of the whole batch.
        log.error("batch response names unknown messages %s: the whole batch fails",
                  sorted(ids - message_ids))
        return message_ids
    return ids


class QueuePoller:
    """One thread that feeds `handler` from the queue at `queue_url`."""

    def __init__(self, queue_url: str, handler: Callable, *, batch_size: int = 1,
                 retry_seconds: int = 2, function_name: str = "worker",
                 timeout_seconds: float = 900.0):
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[str, str] = {}  # messageId -> receipt handle, until settled
        self._thread: threading.Thread | None = None
        self._sqs = None
        self._arn = ""

    def start(self) -> QueuePoller:
        import boto3
        from botocore.config import Config

        # No retries: the only failures locally come from a stopping moto, and a retry would
        # hold up the stop. The loop below tries again anyway.
        # A session of its own: boto3's default one keeps the credentials it first read.
        self._sqs = boto3.session.Session().client(
            "sqs", config=Config(retries={"total_max_attempts": 1}))
        self._arn = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"poller-{self._arn.rsplit(':', 1)[-1]}")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=_WAIT_SECONDS, AttributeNames=["All"],
                    MessageAttributeNames=["All"]).get("Messages", [])
            except Exception:
                if not self._stop.is_set():
                    log.exception("receive from %s failed", self.queue_url)
                    self._stop.wait(1)
                continue
            if messages:
                self._process(messages)

    def _process(self, messages: list[dict]) -> None:
        with self._lock:
            self._inflight.update((m["MessageId"], m["ReceiptHandle"]) for m in messages)
        ids = {m["MessageId"] for m in messages}
        context = LambdaContext(self.function_name, timeout_seconds=self.timeout_seconds)
        try:
            failed = failed_ids(self.handler(sqs_event(messages, self._arn), context), ids)
        except Exception:
            log.exception("%s failed on a batch of %d", self.function_name, len(messages))
            failed = ids
        try:
            self._settle([m for m in messages if m["MessageId"] not in failed],
                         [m for m in messages if m["MessageId"] in failed])
        except Exception:
            if not self._stop.is_set():
                raise
            # The stack stopped under a running batch: its messages stay in the queue and
            # come back after their visibility timeout, as in Lambda.
            log.info("stopped before settling a batch of %d; it will be redelivered",
                     len(messages))
        finally:
            with self._lock:
                for message_id in ids:
                    self._inflight.pop(message_id, None)

    def _settle(self, done: list[dict], failed: list[dict]) -> None:
        for i in range(0, len(done), 10):
            self._check(self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(done[i:i + 10])]), "delete")
        self._retry_after([m["ReceiptHandle"] for m in failed], self.retry_seconds)

    def _retry_after(self, receipts: list[str], seconds: int) -> None:
        for i in range(0, len(receipts), 10):
            self._check(self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": seconds}
                    for n, r in enumerate(receipts[i:i + 10])]), "retry")

    def _check(self, response: dict, what: str) -> None:
        for failure in response.get("Failed", []):
            log.warning("%s on %s failed: %s", what, self.queue_url, failure)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no message is visible, in flight or delayed, and no handler runs."""
        deadline = time.monotonic() + timeout
        while True:
            # The handler check comes first: a batch is invisible in SQS before it is ours.
            with self._lock:
                busy = bool(self._inflight)
            if not busy:
                counts = self._sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=IDLE_ATTRIBUTES)["Attributes"]
                if not any(int(v) for v in counts.values()):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        """Stop receiving; a batch still in its handler is made visible again at once, so that
        it is redelivered after a restart rather than after the visibility timeout."""
        self._stop.set()
        with self._lock:
            receipts = list(self._inflight.values())
        if receipts:
            try:
                self._retry_after(receipts, 0)
            except Exception:
                log.exception("could not release %d in-flight messages", len(receipts))

    def stop(self, timeout: float = 5.0) -> bool:
        """Close, and wait up to `timeout` for a running handler; whether none runs now."""
        self.close()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> QueuePoller:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
