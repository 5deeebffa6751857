"""Lambda entry point of the training worker (SQS training queue, partial batch responses).

Functions too large for a Lambda are handed to the Fargate training task (the stage decides:
see `training_run.dispatch`). A failed run leaves its message on the queue to be retried and, after
the queue's receive limit, parked in the DLQ; the function records the error for the API.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from labelloop.container import deps
from labelloop.observability import MetricUnit, of
from labelloop.settings import TrainingSettings
from labelloop.usecases import training_run
from labelloop.usecases.common import TrainingMessage

# This function's environment (the stack sets exactly what it declares).
SETTINGS = TrainingSettings
OBS = of("training")
logger = OBS.logger
processor = BatchProcessor(event_type=EventType.SQS)


def _record(record: SQSRecord) -> None:
    message = TrainingMessage.model_validate_json(record.body)
    result = training_run.dispatch(deps(SETTINGS), message)
    logger.info("training run", extra={"functionId": message.functionId,
                                       "reason": message.reason, "version": result.version,
                                       "decision": result.decision and result.decision.reason,
                                       "task": result.task})
    if result.version is not None:
        OBS.metrics.add_metric(name="ModelVersionsTrained", unit=MetricUnit.Count, value=1)
        OBS.metrics.add_metric(name="ModelVersionsPromoted", unit=MetricUnit.Count,
                               value=int(bool(result.decision and result.decision.promote)))
    if result.task:
        OBS.metrics.add_metric(name="TrainingTasksStarted", unit=MetricUnit.Count, value=1)


@OBS.entry_point(SETTINGS)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=_record, processor=processor,
                                    context=context)
