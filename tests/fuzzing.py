"""Property-based fuzzing of the whole OpenAPI document (schemathesis on hypothesis),
in-process through the local stack's gateway (the WSGI app the local stack serves) into the
real handler, with real tokens and real ids so that requests reach past authentication and
lookup. Every answer is held to the document: no 5xx, the status declared, the content type
and the body matching the declared schema. tests/test_fuzz.py runs a short seeded profile,
scripts/fuzz_api.py a long one."""

from __future__ import annotations

import re
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

import schemathesis
from apiworld import Tenant
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Path parameter → the id kind it takes (see apiworld.Tenant.ids).
KINDS = {"function_id": "function", "label_id": "label", "sample_id": "sample",
         "job_id": "job", "version": "version"}
_PARAM = re.compile(r"{(\w+)}")


@dataclass
class Report:
    operations: int = 0
    cases: Counter = field(default_factory=Counter)  # per operation
    statuses: Counter = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)  # signature → examples

    def failed(self, label: str, case, err: Exception) -> None:
        title = getattr(err, "title", type(err).__name__)
        detail = " ".join(str(getattr(err, "message", err)).split())[:160]
        key = f"{label}: {title}: {detail}"
        self.failures.setdefault(key, [])
        if len(self.failures[key]) < 3:
            self.failures[key].append(case.as_curl_command())


def _order(label: str) -> tuple[int, int, str]:
    """Deletions last, the function's own deletion very last: earlier operations keep
    reaching the real items."""
    method, path = label.split(" ", 1)
    return (method == "DELETE", path.count("/") == 3 and method == "DELETE", label)


def operations(app, doc: dict | None = None) -> list:
    """The document's operations (but /openapi.json itself), served by `app`; `doc` instead
    of the one the app serves shows that the checks do catch answers off the document."""
    if doc is None:
        schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    else:
        schema = schemathesis.openapi.from_dict(doc)
        schema.app = app
    ops = [r.ok() for r in schema.get_all_operations()]
    return sorted(ops, key=lambda op: _order(op.label))


def run(app, tenant: Tenant, examples: int, negative: int, seed: int = 0,
        log=None, doc: dict | None = None, only: str | None = None) -> Report:
    """`examples` positive and `negative` negative cases per operation; deterministic for a
    seed. Failures are collected, not raised, so every operation gets its share."""
    report = Report()
    for op in operations(app, doc):
        if only and op.label != only:
            continue
        report.operations += 1
        for mode, n in ((GenerationMode.POSITIVE, examples),
                        (GenerationMode.NEGATIVE, negative)):
            if n:
                _fuzz(op, mode, n, seed, tenant, report)
        if log:
            log(f"{op.label}: {report.cases[op.label]} cases")
    return report


def _fuzz(op, mode, n: int, seed: int, tenant: Tenant, report: Report) -> None:
    public = not op.definition.raw.get("security")
    real = {name: tenant.ids[KINDS[name]] for name in _PARAM.findall(op.path)
            if name in KINDS}

    @fixed_seed(seed)
    @settings(max_examples=n, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode), data=st.data())
    def one(case, data):
        for name, ids in real.items():
            # Mostly a real id (deep paths); sometimes the generated one (lookups that fail).
            if data.draw(st.integers(0, 3), label=name):
                case.path_parameters[name] = data.draw(st.sampled_from(ids))
        if not public:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tenant.token}"}
        report.cases[op.label] += 1
        try:
            response = case.call()
        except Exception as err:  # the app itself raised: a 5xx as far as a client sees
            report.failed(op.label, case, err)
            return
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # one per check that failed
            for err in group.exceptions:
                report.failed(op.label, case, err)
        except Failure as err:
            report.failed(op.label, case, err)

    # Unsatisfiable: nothing to break (no parameters, no body), so no negative case exists.
    with suppress(Unsatisfiable):
        one()
