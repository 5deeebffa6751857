"""What the web console needs from the API, through the real handler against moto: its static
files (public, same origin, locked down by CSP), nearest neighbours by embedding, and the
recent invokes its confidence histogram is drawn from. The browser tests are test_console.py."""

from __future__ import annotations

import re

from test_api import make_function
from test_capture import invoke_all, policy

ALL_RANDOM = {"random": {"rate": 1.0, "quota": 20}, "uncertainty": {"quota": 0},
              "rare_class": {"quota": 0}}
TEXTS = ["I was billed twice for the same order",
         "please refund the second charge on my card",
         "the invoice total is wrong",
         "the app freezes when I press save",
         "settings page crashes on open"]


def test_the_console_is_served_publicly_with_every_file_it_links(api):
    status, page, headers = api.call("GET", "/console/", token=None)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" in page and "<script>" not in page  # no inline script: CSP forbids it
    linked = re.findall(r'(?:src|href)="(/console/[^"]+)"', page)
    assert any(p.endswith(".js") for p in linked) and any(p.endswith(".css") for p in linked)
    for path in linked:
        status, body, h = api.call("GET", path, token=None)
        assert status == 200 and body, path
        kind = "text/javascript" if path.endswith(".js") else "text/css" if path.endswith(
            ".css") else ""
        assert h["Content-Type"].startswith(kind), (path, h["Content-Type"])
        # The same ETag back means the copy is current: 304, no body.
        status, body, _ = api.call("GET", path, token=None, headers={"if-none-match": h["ETag"]})
        assert status == 304 and not body

    assert api.call("GET", "/console", token=None)[1] == page
    for missing in ("/console/nope.js", "/console/..", "/console/%2e%2e"):
        status, body, _ = api.call("GET", missing, token=None)
        assert status == 404, missing
    # The API around it still wants a token.
    assert api.call("GET", "/v1/functions", token=None)[0] == 401


def test_similar_samples_are_nearest_first_and_can_keep_to_the_review_queue(api):
    fid = make_function(api)
    policy(api, fid, ALL_RANDOM)
    outs = invoke_all(api, fid, TEXTS)
    queue = {s["id"] for s in api.call("GET", f"/v1/functions/{fid}/review",
                                       query="batchSize=50")[1]}
    assert queue == {o["sampleId"] for o in outs}

    target = outs[0]["sampleId"]  # billed twice
    status, near, _ = api.call("GET", f"/v1/functions/{fid}/samples/{target}/similar",
                               query="batchSize=3&inReviewQueue=true")
    assert status == 200, near
    assert len(near) == 3 and target not in {s["id"] for s in near}
    assert {s["id"] for s in near} <= queue
    sims = [s["similarity"] for s in near]
    assert sims == sorted(sims, reverse=True) and all(-1 <= x <= 1 for x in sims)
    assert near[0]["data"] in TEXTS[1:3]  # the billing ones before the crashes

    # Without the filter, the training samples are candidates too (the nearest is one).
    everything = api.call("GET", f"/v1/functions/{fid}/samples/{target}/similar",
                          query="batchSize=50")[1]
    assert len(everything) == len(TEXTS) - 1 + 6
    assert everything[0]["data"] == "I was charged twice this month"
    assert everything[0]["annotation"]["labelId"].startswith("label_")

    # The neighbours are read in one call, in the order asked; ones gone since are left out.
    from labelloop.container import deps

    wanted = [s["id"].removeprefix("sample_") for s in near]
    got = deps().samples.get_many(fid.removeprefix("function_"),
                                  [wanted[1], "0000000000nope", wanted[0]])
    assert [s.id for s in got] == [wanted[1], wanted[0]]

    status, body, _ = api.call("GET", f"/v1/functions/{fid}/samples/{target}/similar",
                               query="batchSize=0")
    assert status == 400 and "batchSize" in body["message"]
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/samples/sample_nope/similar")
    assert status == 400 and body["message"].startswith("sampleId")  # malformed
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/samples/sample_nope00/similar")
    assert status == 404
    other = api.token("client-b", "secret-b")
    assert api.call("GET", f"/v1/functions/{fid}/samples/{target}/similar",
                    token=other)[0] == 404


def test_recent_invokes_come_newest_first_and_page(api):
    fid = make_function(api)
    outs = invoke_all(api, fid, TEXTS, query="capture=false")
    seen, query = [], "batchSize=2"
    while True:
        status, page, headers = api.call("GET", f"/v1/functions/{fid}/invokes", query=query)
        assert status == 200, page
        seen += page
        if "Link" not in headers:
            break
        query = headers["Link"][1:headers["Link"].index(">")].split("?", 1)[1]
    assert [r["sampleId"] for r in seen] == [o["sampleId"] for o in reversed(outs)]
    first = seen[-1]
    assert first["data"] == TEXTS[0] and first["labelId"] == outs[0]["labelId"]
    assert first["confidence"] == round(outs[0]["confidence"], 6)
    assert first["modelVersion"] == outs[0]["modelVersion"] and 0 <= first["margin"] <= 1

    status, body, _ = api.call("GET", f"/v1/functions/{fid}/invokes", query="batchSize=5000")
    assert status == 400 and "batchSize" in body["message"]
