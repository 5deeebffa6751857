"""Entry point of the Fargate training task: one training run, the same code as the training
Lambda's. The training Lambda starts the task with the message in LABELLOOP_TRAINING_MESSAGE.

    LABELLOOP_TRAINING_MESSAGE='{"functionId": "…"}' python -m labelloop.handlers.training_task

Exit status 0 on success (also when the function was deleted meanwhile), 1 on failure (the
error is recorded on the function, as for the Lambda).
"""

from __future__ import annotations

import os
import sys

from labelloop.data.tasks import TRAINING_MESSAGE_ENV
from labelloop.observability import of
from labelloop.settings import TrainingTaskSettings

# The task's environment (the stack sets exactly what it declares, and the message at RunTask).
SETTINGS = TrainingTaskSettings
# Logs only: embedded metrics reach CloudWatch from Lambda, not from a task's log driver.
logger = of("training-task").logger


def main(environ: dict[str, str] | None = None) -> int:
    from labelloop.container import deps
    from labelloop.usecases import training_run
    from labelloop.usecases.common import TrainingMessage

    env = os.environ if environ is None else environ
    raw = env.get(TRAINING_MESSAGE_ENV)
    if not raw:
        logger.error(f"{TRAINING_MESSAGE_ENV} is not set: nothing to train")
        return 2
    message = TrainingMessage.model_validate_json(raw)
    try:
        result = training_run.run(deps(SETTINGS), message)
    except Exception:
        logger.exception("training run failed", extra={"functionId": message.functionId})
        return 1
    logger.info("training run", extra={"functionId": message.functionId,
                                       "reason": message.reason, "version": result.version,
                                       "decision": result.decision and result.decision.reason})
    return 0


if __name__ == "__main__":
    sys.exit(main())
