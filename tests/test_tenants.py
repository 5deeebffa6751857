"""The tenant matrix, generated from the OpenAPI document: every operation, called with the
other client's token, with every id kind it takes (path, query or body; prefixed and bare)
set to the victim's real ids, answers exactly as it does for an id that never existed (a
404 for ids in the path) and changes nothing of the victim's. Both directions. An operation
of the document without an entry in MATRIX fails the test until it is covered."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import boto3
import pytest
from apiworld import Tenant, document, moto_api, populate

from labelloop.ids import new_bare

PATH_KINDS = {"function_id": "function", "label_id": "label", "sample_id": "sample",
              "job_id": "job"}
PREFIX = {"function": "function_", "label": "label_", "sample": "sample_", "job": "batch_"}
_PLACEHOLDER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Op:
    """How to call one operation so that it gets past validation: a valid body and query,
    in which `{label}` / `{sample}` stand for ids of that kind (tried as the victim's)."""

    body: object = None
    query: str = ""
    public: bool = False  # no token, no tenant data: nothing to cross
    # Query cursors position a page (any well-formed id does): the answer must show nothing
    # of the victim's, but may differ from a never-existing id's.
    cursor: bool = False


FN = "/v1/functions/{function_id}"
JOBS = FN + "/batch-invokes"
MATRIX: dict[str, Op] = {
    "POST /connect/token": Op(public=True),
    "GET /openapi.json": Op(public=True),
    "GET /console": Op(public=True),
    "GET /console/{name}": Op(public=True),
    "POST /v1/functions": Op(body={"name": "intruder"}),
    "GET /v1/functions": Op(),
    f"GET {FN}": Op(),
    f"PUT {FN}": Op(body={"name": "renamed", "storeInvokes": False}),
    f"DELETE {FN}": Op(),
    "GET /v0.9/functions/{function_id}": Op(),
    "GET /v0.9/functions/{function_id}/metrics": Op(),
    f"POST {FN}/labels": Op(body={"name": "intruder"}),
    f"GET {FN}/labels": Op(),
    f"GET {FN}/labels/{{label_id}}": Op(),
    f"PUT {FN}/labels/{{label_id}}": Op(body={"name": "renamed"}),
    f"DELETE {FN}/labels/{{label_id}}": Op(),
    f"POST {FN}/samples": Op(body={"data": "intruder text", "annotation": {"labelId": "{label}"}}),
    f"POST {FN}/samples/batch": Op(body={"samples": [
        {"data": "intruder text", "annotation": {"labelId": "{label}"}}]}),
    f"GET {FN}/samples": Op(query="after={sample}", cursor=True),
    f"GET {FN}/samples/{{sample_id}}/similar": Op(),
    f"GET {FN}/samples/{{sample_id}}": Op(),
    f"GET {FN}/images/{{digest}}": Op(),
    f"DELETE {FN}/samples/{{sample_id}}": Op(),
    f"PUT {FN}/samples/{{sample_id}}/annotation": Op(body={"labelId": "{label}"}),
    f"DELETE {FN}/samples/{{sample_id}}/annotation": Op(),
    f"POST {FN}/invoke": Op(body={"data": "intruder text"}),
    f"GET {FN}/invokes": Op(query="after={sample}", cursor=True),
    f"POST {FN}/train": Op(body={"force": True}),
    f"GET {FN}/models": Op(),
    f"GET {FN}/models/{{version}}": Op(),
    f"POST {FN}/models/{{version}}/promote": Op(),
    f"POST {FN}/models/rollback": Op(),
    f"GET {FN}/review": Op(),
    f"POST {FN}/review/annotations": Op(
        body={"annotations": [{"sampleId": "{sample}", "labelId": "{label}"}]}),
    f"POST {FN}/review/{{sample_id}}/dismiss": Op(),
    f"POST {FN}/review/{{sample_id}}/keep": Op(),
    f"GET {FN}/drift": Op(),
    f"GET {FN}/capture": Op(),
    f"PUT {FN}/capture": Op(body={"strategies": {}, "nearDuplicateCosine": 0.99}),
    f"GET {FN}/live-accuracy": Op(),
    f"GET {FN}/thresholds": Op(query="label={label}"),
    f"PUT {FN}/thresholds": Op(body={"accept": {"confidence": 0.9},
                                     "perLabel": {"{label}": {"accept": {"confidence": 0.8}}}}),
    f"DELETE {FN}/thresholds": Op(),
    f"POST {JOBS}": Op(body={"items": [{"data": "intruder text"}]}),
    f"GET {JOBS}/{{job_id}}": Op(),
    f"GET {JOBS}/{{job_id}}/results": Op(),
}


@pytest.fixture(scope="module")
def world(encoders):
    with moto_api(encoders) as api:
        yield api, populate(api, "client-a"), populate(api, "client-b")


def _ids_in(op: Op) -> set[str]:
    text = json.dumps(op.body) + op.query
    return {k for k in _PLACEHOLDER.findall(text) if k in PREFIX}


def _fill(template, ids: dict[str, str]):
    """The body or query with `{kind}` placeholders (also as dict keys) set to ids."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: ids.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {_fill(k, ids): _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


def _forms(kind: str, prefixed: str) -> list[str]:
    return [prefixed, prefixed.removeprefix(PREFIX[kind])]


def _victim_ids(victim: Tenant, kind: str) -> list[str]:
    """The victim's ids of a kind worth trying: both functions (trained, untrained), an
    annotated and an invoked (or captured) sample, its labels, its job."""
    ids = victim.ids[kind]
    return [ids[0], ids[-1]] if kind == "sample" else ids[:2]


def _state(api, victim: Tenant) -> dict:
    """Everything stored that is the victim's: items of every table and objects in the bucket
    that name one of its functions or the client itself."""
    marks = [fid.removeprefix("function_") for fid in victim.ids["function"]]
    marks.append(victim.client_id)
    ddb, out = boto3.client("dynamodb"), {}
    for var in ("LABELLOOP_TABLE", "LABELLOOP_INVOKES_TABLE", "LABELLOOP_IDEMPOTENCY_TABLE"):
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName=api.env[var]):
            items += [json.dumps(i, sort_keys=True, default=repr) for i in page["Items"]]
        out[var] = sorted(i for i in items if any(m in i for m in marks))
    s3 = boto3.client("s3")
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=api.env["LABELLOOP_BUCKET"]):
        objects += [(o["Key"], o["ETag"]) for o in page.get("Contents", [])]
    out["s3"] = sorted(o for o in objects if any(m in o[0] for m in marks))
    # The victim has state: items, stored invokes, models and batch results.
    assert out["LABELLOOP_TABLE"] and out["LABELLOOP_INVOKES_TABLE"] and out["s3"], out
    return out


def _normal(body, given: str) -> str:
    """The answer with the id the request gave (in either form) made anonymous: messages
    echo what was asked."""
    bare = given.split("_")[-1]
    return json.dumps(body, sort_keys=True).replace(given, "<id>").replace(bare, "<id>")


def _pairs(name: str, op: Op, attacker: Tenant, victim: Tenant):
    """For each id kind the operation takes, each of the victim's ids of it and each form
    (prefixed, bare): (kind, the request with the victim's id, the same request with a
    never-existing id instead); a request is (path, query, body, the id in it)."""
    # An image digest is no id kind: a well-formed one tests the function it is asked in.
    template = name.split(" ", 1)[1].replace("{version}", "1").replace("{digest}", "a" * 64)
    params = [p for p in _PLACEHOLDER.findall(template) if p in PATH_KINDS]
    kinds = [PATH_KINDS[p] for p in params] + sorted(_ids_in(op))
    own = {k: attacker.ids[k][0] for k in PREFIX}
    theirs = {k: victim.ids[k][0] for k in PREFIX}

    def request(base: dict, kind: str, tried: str):
        ids, path = {**base, kind: tried}, template
        for p in params:
            path = path.replace("{" + p + "}", ids[PATH_KINDS[p]])
        return path, _fill(op.query, ids), _fill(op.body, ids), tried

    for kind in kinds:
        # The function under attack: the victim's whole path; an item inside: the attacker's
        # own function, the victim's item.
        base = theirs if kind == "function" else own
        for victim_id in _victim_ids(victim, kind):
            never = PREFIX[kind] + new_bare()
            for v, n in zip(_forms(kind, victim_id), _forms(kind, never), strict=True):
                yield kind, request(base, kind, v), request(base, kind, n)


def test_every_operation_is_in_the_matrix(world):
    api, _, _ = world
    doc = document(api)
    ops = {f"{m.upper()} {p}": op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) == set(MATRIX), {"not covered": set(ops) - set(MATRIX),
                                     "gone": set(MATRIX) - set(ops)}
    for name, entry in MATRIX.items():
        assert bool(ops[name].get("security")) != entry.public, name


@pytest.mark.parametrize("direction", ["b-attacks-a", "a-attacks-b"])
def test_no_client_reaches_another_clients_data(world, direction):
    api, a, b = world
    attacker, victim = (b, a) if direction == "b-attacks-a" else (a, b)
    before = _state(api, victim)
    victim_ids = {i.split("_")[-1] for ids in victim.ids.values() for i in ids
                  if not i.isdigit()}
    problems, requests = [], 0

    def call(method, name, path, query, body, tried):
        status, answer, _ = api.call(method, path, body, query=query, token=attacker.token)
        sent, shown = path + query + json.dumps(body), json.dumps(answer)
        leaked = {i for i in victim_ids if i in shown and i not in sent}
        if leaked:
            problems.append(f"{name} [{tried}] shows the victim's {sorted(leaked)}")
        return status, answer

    for name, op in MATRIX.items():
        if op.public:
            continue
        method, tried_any = name.split(" ")[0], False
        for kind, theirs, never in _pairs(name, op, attacker, victim):
            tried_any, requests = True, requests + 2
            v_status, v_answer = call(method, name, *theirs)
            n_status, n_answer = call(method, name, *never)
            if op.cursor and kind == "sample":
                same = v_status == n_status  # (a cursor: the page may start elsewhere)
            else:
                same = (v_status, _normal(v_answer, theirs[-1])) == (
                    n_status, _normal(n_answer, never[-1]))
            in_path = "{" + kind + "_id}" in name
            if not same or (in_path and v_status != 404):
                problems.append(f"{name} [{kind}]: the victim's {theirs[-1]} → {v_status} "
                                f"{v_answer}; never-existing {never[-1]} → {n_status} {n_answer}")
        if not tried_any:  # no id to try: the attacker's own view shows nothing of the victim
            requests += 1
            status, _ = call(method, name, name.split(" ", 1)[1], "", op.body, None)
            if status != 200:
                problems.append(f"{name}: {status}")
    after = _state(api, victim)
    print(f"tenant matrix ({direction}): {requests} requests over "
          f"{sum(not op.public for op in MATRIX.values())} operations")
    assert not problems, "\n".join(problems)
    assert after == before
