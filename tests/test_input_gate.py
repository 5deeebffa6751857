"""The input gate and the answers that must not leak: malformed input of every kind gets a 4xx
naming the field, nothing is stored, and a missing resource reads the same whoever owns it."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import boto3
import pytest
from test_api import make_function

from labelloop.api.gate import MAX_DEPTH, _depth
from labelloop.ids import new_bare

LONE = "\udc80"


def _count_items(env: dict) -> int:
    return boto3.client("dynamodb").scan(TableName=env["LABELLOOP_TABLE"],
                                         Select="COUNT")["Count"]


def _event_call(api, method: str, path: str, body: bytes, content_type: str,
                query: str = "", token: bool = True):
    """A request whose body is raw bytes, as API Gateway passes them: base64."""
    from conftest import CONTEXT

    from labelloop.handlers.api import handler

    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {api.token()}"
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
             "headers": headers, "queryStringParameters": None,
             "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                         "sourceIp": "127.0.0.1", "userAgent": "pytest"},
                                "requestId": "test", "routeKey": "$default",
                                "stage": "$default", "timeEpoch": 0},
             "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    resp = handler(event, CONTEXT)
    return resp["statusCode"], json.loads(resp["body"])


def test_depth_counts_brackets_outside_strings_only():
    assert _depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert _depth("[" * 50 + "]" * 50) == 50
    assert _depth('"no brackets [ here"') == 0


def test_malformed_bodies_get_400_naming_the_field_and_store_nothing(api, aws):
    fid = make_function(api)
    label = api.call("GET", f"/v1/functions/{fid}/labels")[1][0]["id"]
    before = _count_items(aws)
    fn = f"/v1/functions/{fid}"
    deep_list = "[" * 10_000 + "]" * 10_000
    deep_obj = '{"data": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"
    cases = [
        # (method, path, raw JSON body, the field the message must start with)
        ("POST", f"{fn}/samples", deep_list, "body"),
        # An array: powertools would take its first item as the body and drop the rest.
        ("POST", f"{fn}/samples", json.dumps([{"data": "one"}, {"data": "two"}]), "body"),
        ("POST", f"{fn}/samples/batch", json.dumps([{"samples": [{"data": "one"}]}]), "body"),
        ("POST", f"{fn}/invoke", ' [{"data": "one"}]', "body"),
        ("POST", f"{fn}/invoke", deep_obj, "body"),
        ("POST", "/v1/functions", deep_list, "body"),
        ("POST", "/v1/functions",
         '{"name": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", "body"),
        ("POST", f"{fn}/samples", json.dumps({"data": "hi " + LONE}), "data"),
        ("POST", f"{fn}/samples", json.dumps({"data": "ok", "externalId": LONE}), "externalId"),
        ("POST", f"{fn}/samples", json.dumps({"data": "ok", "annotation": {
            "labelName": "x" + LONE}}), "annotation.labelName"),
        ("POST", f"{fn}/invoke", json.dumps({"data": LONE}), "data"),
        ("POST", f"{fn}/labels", json.dumps({"name": "a" + LONE}), "name"),
        ("POST", f"{fn}/labels", json.dumps({"name": "a", "description": LONE}), "description"),
        ("PUT", f"{fn}/labels/{label}", json.dumps({"name": "a", "metadata": {"k": LONE}}),
         "metadata.k"),
        ("POST", "/v1/functions", json.dumps({"name": LONE}), "name"),
        ("POST", f"{fn}/batch-invokes", json.dumps({"items": [{"data": "ok"},
                                                              {"data": LONE}]}),
         "items[1].data"),
    ]
    for method, path, raw, field in cases:
        status, out, _ = api.call(method, path, raw=raw)
        assert status == 400 and out["message"].startswith(field + ":"), (path, raw[:60], out)
    # A valid surrogate pair is a character like any other. (Not captured: a random capture
    # of it would be an item stored, by design.)
    status, out, _ = api.call("POST", f"{fn}/invoke", raw=json.dumps({"data": "ok \U0001f600"}),
                              query="capture=false")
    assert status == 200, out
    assert _count_items(aws) == before


def test_invalid_utf8_bytes_get_400_for_json_and_form_bodies_even_without_a_token(api, aws):
    fid = make_function(api, samples=[], train=False)
    before = _count_items(aws)
    status, out = _event_call(api, "POST", f"/v1/functions/{fid}/samples",
                              b'{"data": "caf\xe9"}', "application/json")
    assert status == 400 and out["message"].startswith("body: not valid UTF-8"), out
    status, out = _event_call(api, "POST", "/connect/token", b"client_id=\xff&client_secret=x",
                              "application/x-www-form-urlencoded", token=False)
    assert status == 400 and out["message"].startswith("body"), out
    # Percent-encoded invalid UTF-8 names the form field.
    status, out, _ = api.call("POST", "/connect/token", form="client_id=a%FFb&client_secret=x",
                              token=None)
    assert status == 400 and out["message"].startswith("client_id:"), out
    # UTF-8 sent as bytes (base64) is fine.
    status, out = _event_call(api, "POST", f"/v1/functions/{fid}/samples",
                              json.dumps({"data": "café"}, ensure_ascii=False).encode(),
                              "application/json")
    assert status == 200 and out["data"] == "café", out
    assert _count_items(aws) == before + 2  # the sample and its data-hash claim


def test_malformed_ids_cursors_and_model_ids_are_400s_naming_the_parameter(api):
    fid = make_function(api)
    fn = f"/v1/functions/{fid}"
    cases = [
        ("GET", "/v1/functions/not-an-id!", {}, "", "functionId"),
        ("GET", f"{fn}/labels/x", {}, "", "labelId"),
        ("GET", f"{fn}/samples/abc", {}, "", "sampleId"),
        ("GET", f"{fn}/samples", {}, "after=%21%21", "after"),
        ("GET", f"{fn}/invokes", {}, "after=nope", "after"),
        ("POST", f"{fn}/invoke", {"data": "x"}, "modelId=-1", "modelId"),
        ("POST", f"{fn}/invoke", {"data": "x"}, "modelId=1e3", "modelId"),
        ("POST", f"{fn}/invoke", {"data": "x"}, "modelId=" + "9" * 5000, "modelId"),
        ("POST", f"{fn}/invoke", {"data": "x"}, "externalId=%ED%B2%80", "externalId"),
        ("GET", f"{fn}/models/-1", {}, "", "version"),
        ("GET", f"{fn}/batch-invokes/a.b", {}, "", "jobId"),
        ("PUT", f"{fn}/samples/{'sample_' + new_bare()}/annotation", {"labelId": "x!"}, "",
         "annotation.labelId"),
    ]
    for method, path, body, query, field in cases:
        status, out, _ = api.call(method, path, body if method != "GET" else None, query=query)
        assert status == 400 and out["message"].startswith(field), (path, query, out)


def test_a_missing_model_version_names_no_storage_key(api):
    fid = make_function(api)
    status, out, headers = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "x"},
                                    query="modelId=999")
    assert status == 404 and out == {"message": "modelId: model version 999 not found"}
    assert headers["X-Content-Type-Options"] == "nosniff"  # error answers too


def test_another_clients_function_reads_exactly_like_one_that_never_existed(api):
    fid = make_function(api, samples=[], train=False)
    other = api.token("client-b", "secret-b")
    never = "function_" + new_bare()
    for mine, nobodys in ((fid, never), (fid.removeprefix("function_"),
                                          never.removeprefix("function_"))):
        for method, suffix, body in (("GET", "", None), ("POST", "/invoke", {"data": "x"}),
                                     ("GET", "/labels", None), ("DELETE", "", None)):
            a = api.call(method, f"/v1/functions/{mine}{suffix}", body, token=other)
            b = api.call(method, f"/v1/functions/{nobodys}{suffix}", body, token=other)
            assert a[0] == b[0] == 404
            assert a[1]["message"].replace(mine, "ID") == b[1]["message"].replace(nobodys, "ID")
    assert api.call("GET", f"/v1/functions/{fid}")[0] == 200  # nothing changed for the owner


def test_docs_page_has_a_policy_allowing_exactly_its_inline_scripts(api):
    status, html, headers = api.call("GET", "/docs", token=None)
    assert status == 200 and "<script>" in html
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and policy.count("'sha256-") == html.count("</script>")
    assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # The page shows the served document (no 422 anywhere), and offers it for download.
    status, doc, _ = api.call("GET", "/openapi.json", token=None)
    assert status == 200 and '"422"' not in html and "422" not in json.dumps(doc["paths"])
    assert '"labelloop API"' in html and '"oauth2"' in html
    assert api.call("GET", "/docs", query="format=json", token=None)[1] == doc
    status, redirect, headers = api.call("GET", "/docs", query="format=oauth2-redirect",
                                         token=None)
    assert status == 200 and "oauth2" in redirect
    assert headers["Content-Security-Policy"].count("'sha256-") == redirect.count("</script>")


@pytest.fixture
def gateway():
    from labelloop.handlers.api import handler
    from labelloop.local.gateway import Gateway

    with Gateway(handler) as gw:
        yield gw


def _refused(url: str, body: bytes, content_type: str) -> urllib.error.HTTPError:
    req = urllib.request.Request(url, method="POST", data=body,
                                 headers={"Content-Type": content_type})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    return err


def test_the_local_gateway_refuses_raw_bytes_and_names_no_server_software(api, gateway):
    err = _refused(gateway.url + "/connect/token", b"client_id=\xc3\x28&client_secret=x",
                   "application/x-www-form-urlencoded")
    assert err.value.code == 400
    assert json.loads(err.value.read())["message"].startswith("body")
    assert err.value.headers["X-Content-Type-Options"] == "nosniff"  # the gate's refusal too
    server = err.value.headers.get("Server", "")
    assert "werkzeug" not in server.lower() and "python" not in server.lower()


def test_a_refusal_at_the_gate_leaves_no_finish_waiting_for_a_handoff(api):
    """The gateway (as Lambda's extension) waits for each request to hand its deferred work
    over; a request the gate refuses hands over nothing, which must still count as handed."""
    from labelloop import afterwork
    from labelloop.handlers.api import handler
    from labelloop.local.gateway import Gateway

    runner = afterwork.Runner()
    previous = afterwork.install(runner)
    try:
        with Gateway(handler, runner=runner) as gw:
            err = _refused(gw.url + "/v1/functions", b'{"name": "\xff"}', "application/json")
            assert err.value.code == 400
            assert runner.wait_idle(timeout=5)  # not the 30 s a missing handoff waits
    finally:
        afterwork.install(previous)
