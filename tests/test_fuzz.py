"""The API holds to its OpenAPI document under a seeded, bounded fuzzing profile (see
tests/fuzzing.py; scripts/fuzz_api.py runs the long one)."""

from __future__ import annotations

import time
from importlib.metadata import version

import pytest
from apiworld import document, moto_api, populate
from fuzzing import run

from labelloop.api.openapi import PUBLIC, ROUTES, label

EXAMPLES, NEGATIVE, SEED = 12, 6, 17


@pytest.fixture(scope="module")
def world(encoders):
    with moto_api(encoders) as api:
        yield api, populate(api, "client-a")


@pytest.fixture(scope="module")
def gateway(world):
    from labelloop.handlers.api import handler
    from labelloop.local.gateway import Gateway

    return Gateway(handler)


def test_every_documented_route_is_described(world, gateway):
    """A new route fails here until api/openapi.py's ROUTES says what it answers."""
    doc = document(world[0])
    assert doc["info"] == {"title": "labelloop API", "version": version("labelloop")}
    assert doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"] == {
        "tokenUrl": "/connect/token", "scopes": {}}
    ops = {f"{m.upper()} {path}": op for path, item in doc["paths"].items()
           for m, op in item.items()}
    assert set(ops) == {label(key) for key in ROUTES}
    public = {label(key) for key in PUBLIC}
    for name, op in ops.items():
        responses = op["responses"]
        assert "200" in responses and "400" in responses and "422" not in responses, name
        assert bool(op.get("security")) == (name not in public), name
        assert "401" in responses or name in public, name
        for status, response in responses.items():
            if status >= "400":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, name


def test_the_checks_catch_an_answer_off_the_document(world, gateway):
    """The same profile against a document that promises a field no function has, and no
    404: every answer to the route breaks it, and the report says so."""
    api, tenant = world
    doc = document(api)
    doc["components"]["schemas"]["Function"]["required"].append("promisedButAbsent")
    del doc["paths"]["/v1/functions/{function_id}"]["get"]["responses"]["404"]
    report = run(gateway, tenant, 5, 0, SEED, doc=doc, only="GET /v1/functions/{function_id}")
    assert report.operations == 1 and report.statuses[200] and report.statuses[404]
    problems = " ".join(report.failures)
    assert "promisedButAbsent" in problems and "404" in problems, report.failures


def test_fuzzing_finds_no_5xx_and_no_answer_off_the_document(world, gateway):
    """The profile ends with deletions of the real items: tests that need them come first."""
    _, tenant = world
    started = time.monotonic()
    report = run(gateway, tenant, EXAMPLES, NEGATIVE, SEED)
    cases = sum(report.cases.values())
    print(f"fuzz: {report.operations} operations, {cases} cases, "
          f"{time.monotonic() - started:.1f} s, statuses {dict(sorted(report.statuses.items()))}")
    assert report.operations == len(report.cases) == len(ROUTES) - 1  # all but /openapi.json
    # The profile reaches past authentication and lookups: real successes on most routes.
    assert report.statuses[200] >= cases // 10, report.statuses
    assert not report.failures, "\n".join(
        f"{k}\n    " + "\n    ".join(v) for k, v in report.failures.items())


def test_what_the_long_profile_found_stays_fixed(world):
    """scripts/fuzz_api.py found a label metadata key "" accepted, after which moto's stored
    map broke every read of the function's labels (so every sample write) with a 500; and a
    threshold below DynamoDB's smallest number (a 500 from boto3's Underflow)."""
    api, tenant = world
    fid = api.call("POST", "/v1/functions", {"name": "fresh"}, token=tenant.token)[1]["id"]
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/labels",
                               {"name": "odd", "metadata": {"": "x"}}, token=tenant.token)
    assert status == 400 and body["message"].startswith("metadata"), body
    assert api.call("GET", f"/v1/functions/{fid}/labels", token=tenant.token)[0] == 200
    for tiny in ({"confidence": 5e-324}, {"targetPrecision": 1e-200}):
        status, body, _ = api.call("PUT", f"/v1/functions/{fid}/thresholds", {"accept": tiny},
                                   token=tenant.token)
        assert status == 200, body
    # Stored as DynamoDB's smallest number, not as 0: a cosine must stay above 0 when read.
    body = {"nearDuplicateCosine": 1e-200}
    assert api.call("PUT", f"/v1/functions/{fid}/capture", body, token=tenant.token)[0] == 200
    for path in ("", "/capture", "/thresholds"):
        status, answer, _ = api.call("GET", f"/v1/functions/{fid}{path}", token=tenant.token)
        assert status in (200, 409), (path, answer)  # 409: thresholds before any model
