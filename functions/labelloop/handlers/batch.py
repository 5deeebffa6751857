"""Lambda entry point of the batch-invoke worker (SQS batch queue, partial batch responses).

Each message runs once per SQS message id (Powertools idempotency on the idempotency table): a
redelivered message is answered from the first run's record. A message that fails is retried
and, after the queue's receive limit, parked in the DLQ; on its last attempt its items are
counted into the job as failed, so that the job still ends.
"""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from labelloop.container import Deps, deps
from labelloop.data.idempotency import persistence_layer
from labelloop.observability import MetricUnit, of
from labelloop.resources import RESOURCES
from labelloop.settings import BatchSettings
from labelloop.usecases import batch
from labelloop.usecases.batch import BatchMessage

# This function's environment (the stack sets exactly what it declares).
SETTINGS = BatchSettings
OBS = of("batch-invoke")
logger = OBS.logger
processor = BatchProcessor(event_type=EventType.SQS)
# Redeliveries come within visibility timeouts (16 minutes); a few hours covers them amply.
config = IdempotencyConfig(event_key_jmespath="messageId", expires_after_seconds=6 * 3600)
MAX_RECEIVES = next(q.max_receive_count for q in RESOURCES.queues
                    if q.env == "LABELLOOP_BATCH_QUEUE_URL")
# One idempotent record handler per container (its persistence layer uses the container's
# DynamoDB client; tests and the local stack replace the container).
_handlers: WeakKeyDictionary[Deps, object] = WeakKeyDictionary()


def _process(record: SQSRecord) -> dict:
    d = deps(SETTINGS)
    attrs = record.raw_event.get("attributes") or {}
    message = BatchMessage.model_validate_json(record.body)  # malformed: retried, then DLQ
    sent_ms = int(attrs.get("SentTimestamp") or time.time() * 1000)
    try:
        result = batch.run_part(d, message, record.message_id, sent_ms)
    except Exception as err:
        if int(attrs.get("ApproximateReceiveCount") or 1) >= MAX_RECEIVES:
            batch.fail_part(d, message, record.message_id, f"{type(err).__name__}: {err}")
        raise
    logger.info("batch part", extra={"functionId": message.functionId, **result.as_dict()})
    if result.counted:  # a redelivery's items were counted by the run that did them
        OBS.metrics.add_metric(name="BatchItems", unit=MetricUnit.Count, value=result.items)
        OBS.metrics.add_metric(name="BatchItemsFailed", unit=MetricUnit.Count,
                               value=result.failed)
    return result.as_dict()


def _record_handler(d: Deps):
    h = _handlers.get(d)
    if h is None:
        h = idempotent_function(
            _process, data_keyword_argument="record", config=config,
            persistence_store=persistence_layer(d.settings.idempotency_table))
        _handlers[d] = h
    return h


@OBS.entry_point(SETTINGS)
def handler(event: dict, context: LambdaContext) -> dict:
    config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=_record_handler(deps(SETTINGS)),
                                    processor=processor, context=context)
