"""SQS: training requests and batch-invoke parts."""

from __future__ import annotations

import json

SQS_MAX_BYTES = 256 * 1024


class Queues:
    def __init__(self, sqs, training_queue_url: str, batch_queue_url: str | None = None):
        self._sqs = sqs
        self._training = training_queue_url
        self._batch = batch_queue_url

    def send_training_message(self, body: dict, delay_seconds: int) -> None:
        self._sqs.send_message(QueueUrl=self._training, MessageBody=json.dumps(body),
                               DelaySeconds=min(max(delay_seconds, 0), 900))

    def send_batch_messages(self, bodies: list[str]) -> None:
        """SendMessageBatch in groups of up to 10 whose payload stays under SQS's 256 KiB;
        raises if any message was not accepted."""
        if self._batch is None:
            raise RuntimeError("this entry point has no batch queue (LABELLOOP_BATCH_QUEUE_URL)")
        group: list[str] = []
        size = 0
        for body in [*bodies, None]:
            n = 0 if body is None else len(body.encode())
            if group and (body is None or len(group) == 10 or size + n > SQS_MAX_BYTES):
                resp = self._sqs.send_message_batch(QueueUrl=self._batch, Entries=[
                    {"Id": str(i), "MessageBody": b} for i, b in enumerate(group)])
                if resp.get("Failed"):
                    raise RuntimeError(f"SQS refused batch messages: {resp['Failed'][:3]}")
                group, size = [], 0
            if body is not None:
                group.append(body)
                size += n
