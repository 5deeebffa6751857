"""What each function tells its operator, under one service name per function
(`labelloop-api`, `labelloop-training`, `labelloop-batch-invoke`, `labelloop-training-task`):
Powertools' Logger (JSON lines), Metrics (CloudWatch's embedded metric format, namespace
`labelloop`) and, where the stage turns tracing on (`LABELLOOP_TRACING`), its Tracer (X-Ray).

Tracing is opt-in because importing the X-Ray SDK costs every cold start about 200 ms on our
machines (`python -X importtime`), traced or not; a container decides at its first request.
Loggers write to the process's stdout as Lambda expects, as it is when a line is written, not
as it was when the logger was made: the emulator swaps `sys.stdout` per invocation and pytest per
test, and a stream closed since must not turn log lines into errors. `labelloop local` points them
at its log file instead (`write_logs_to`, from `labelloop.local.logfile`).
"""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

if TYPE_CHECKING:
    from labelloop.settings import Settings

NAMESPACE = "labelloop"
# Requests that count nothing (most of the API's) are no news.
warnings.filterwarnings("ignore", message="No application metrics to publish")

__all__ = ["NAMESPACE", "MetricUnit", "Observability", "of", "per_function", "service_name",
           "service_wide", "write_logs_to"]


class _StdoutHandler(logging.StreamHandler):
    """A StreamHandler whose stream is looked up per record: the chosen one, else `sys.stdout`."""

    chosen: TextIO | None = None

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return self.chosen or sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns one; ours is looked up per record


def write_logs_to(stream: TextIO | None) -> None:
    """Every function's log lines go to `stream` from now on (None: back to `sys.stdout`)."""
    _StdoutHandler.chosen = stream


@dataclass(frozen=True)
class Observability:
    service: str
    logger: Logger
    metrics: Metrics

    def entry_point(self, settings: type[Settings]) -> Callable:
        """Decorates a Lambda handler: the invocation's context in its log lines, its metrics
        flushed after it, and traced if its settings say so."""
        def wrap(fn: Callable) -> Callable:
            logged = self.metrics.log_metrics(
                self.logger.inject_lambda_context(clear_state=True)(fn))
            chosen: Callable | None = None

            @functools.wraps(fn)
            def handler(event, context):
                nonlocal chosen
                if chosen is None:
                    chosen = self._traced(logged) if _tracing(settings) else logged
                try:
                    return chosen(event, context)
                finally:
                    if is_metrics_disabled():
                        # Disabled, Powertools' flush neither prints nor clears: the set would
                        # grow until its 100-value limit prints it after all (every 100th
                        # invoke of a benchmark or of the local stack).
                        self.metrics.clear_metrics()
            return handler
        return wrap

    def _traced(self, fn: Callable) -> Callable:
        from aws_lambda_powertools import Tracer

        return Tracer(service=self.service).capture_lambda_handler(fn)


def _tracing(settings: type[Settings]) -> bool:
    from labelloop.container import deps

    return deps(settings).settings.tracing


def per_function(function: str, function_id: str, values: dict[str, tuple[MetricUnit, float]],
                 **dimensions: str) -> None:
    """One EMF line of `values` ({name: (unit, value)}) under the dimensions service, the
    labelloop function's id and `dimensions`: written at once, apart from the handler's own
    set (which has no function dimension and is flushed when the handler returns)."""
    _emit(function, values, {"function": function_id, **dimensions})


def service_wide(function: str, values: dict[str, tuple[MetricUnit, float]]) -> None:
    """One EMF line of `values` under the service dimension alone: what one alarm over every
    labelloop function watches (CloudWatch matches dimensions exactly)."""
    _emit(function, values, {})


def _emit(function: str, values: dict[str, tuple[MetricUnit, float]],
          dimensions: dict[str, str]) -> None:
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=of(function).service)
    for name, value in dimensions.items():
        metrics.add_dimension(name=name, value=value)
    for name, (unit, value) in values.items():
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()


def service_name(function: str) -> str:
    """The `service` dimension and log field of a labelloop function (the stack's alarms
    name it)."""
    return f"labelloop-{function}"


@functools.cache
def of(function: str) -> Observability:
    """The one Observability of a function (by its name in `resources.py`)."""
    service = service_name(function)
    logger = Logger(service=service, logger_handler=_StdoutHandler())
    # The package's module loggers (`logging.getLogger(__name__)`, children of "labelloop")
    # write through this JSON handler, tagged with this service: a function's log stream has
    # one format (the emulator's deploy check reads one of their lines).
    logging.getLogger("labelloop")
    copy_config_to_registered_loggers(source_logger=logger, include={"labelloop"})
    return Observability(service, logger, Metrics(namespace=NAMESPACE, service=service))
