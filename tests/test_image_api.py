"""Image functions through the HTTP API (in process, against moto): create, labels, samples as
data URIs, the 409 before two labels have samples, training, invoke, the image behind a
sample's `data` URL, duplicates by content, feedback on an invoke, and bad input as 400s."""

from __future__ import annotations

import base64
import hashlib
import io
from urllib.parse import urlsplit

import pytest
from conftest import install_containers
from PIL import Image


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _uri(data: bytes) -> str:
    return "data:image/jpg;base64," + base64.b64encode(data).decode()  # as the SDK spells it


def _crops(photo: bytes, n: int) -> list[bytes]:
    img = Image.open(io.BytesIO(photo))
    w, h = img.size
    return [_jpeg(img.crop((i * w // 20, i * h // 30, w - (n - i) * w // 25, h - i * h // 40)))
            for i in range(n)]


def _views(base: str, sample_id: str):
    """A sample's stored training views (what training learns from besides its picture)."""
    from labelloop import container
    from labelloop.domain import decode_views
    from labelloop.ids import bare

    item = container.deps().samples.get(bare(base.rsplit("/", 1)[1], "function"),
                                        bare(sample_id, "sample"))
    return decode_views(item.views, 1280)


def _pets(api) -> str:
    """A new Image function with labels cat and cup; its path."""
    status, fn, _ = api.call("POST", "/v1/functions", {"name": "pets", "input": "Image",
                                                       "output": "Classification"})
    assert status == 200 and (fn["input"], fn["encoder"]) == ("Image", "image"), fn
    base = f"/v1/functions/{fn['id']}"
    for name in ("cat", "cup"):
        assert api.call("POST", f"{base}/labels", {"name": name})[0] == 200
    return base


def _annotated(api, base: str, cats: list[bytes], cups: list[bytes]) -> list[tuple[dict, bytes]]:
    """Three pictures of each label as annotated samples: (the answer, the bytes) each."""
    created = []
    for data, label in [*((c, "cat") for c in cats[:3]), *((c, "cup") for c in cups[:3])]:
        status, sample, _ = api.call("POST", f"{base}/samples", {
            "data": _uri(data), "annotation": {"labelName": label}, "externalId": None})
        assert status == 200, sample
        created.append((sample, data))
    return created


@pytest.fixture
def image_api(api, image_encoder, encoders):
    encoders.put(image_encoder)  # the test session's one image session
    return api


def test_an_image_function_from_creation_to_feedback(image_api, sample_photos):
    api = image_api
    base = _pets(api)
    assert api.call("GET", base)[1]["input"] == "Image"  # what the SDK's factory reads
    assert not any(r["batchItemFailures"] for r in api.train())  # labels alone: no model
    status, out, _ = api.call("POST", f"{base}/invoke", {"data": _uri(sample_photos[
        "rocket.jpg"])})
    assert status == 409 and "Image function needs 2 annotated samples" in out["message"], out

    cats, cups = _crops(sample_photos["chelsea.png"], 4), _crops(sample_photos["coffee.png"], 4)
    sample, data = _annotated(api, base, cats, cups)[0]
    assert _views(base, sample["id"]).shape == (6, 1280)  # annotated as created: views kept
    url = urlsplit(sample["data"])
    assert url.scheme == "https" and url.path.startswith(f"{base}/images/")
    status, body, headers = api.call("GET", url.path)
    assert status == 200 and body == data and headers["Content-Type"] == "image/jpeg"
    assert api.call("GET", url.path, token=api.token("client-b", "secret-b"))[0] == 404
    status, out, _ = api.call("POST", f"{base}/samples", {"data": _uri(data)})  # same bytes
    assert status == 409 and out["existingSampleId"] == sample["id"], out

    assert not any(r["batchItemFailures"] for r in api.train())
    fn = api.call("GET", base)[1]
    assert fn.get("liveModelVersion"), fn
    for held, label in ((cats[3], "cat"), (cups[3], "cup")):
        # Not captured: a captured invoke is a sample already, and feedback below must make one.
        status, out, _ = api.call("POST", f"{base}/invoke", {"data": _uri(held)},
                                  query="capture=false")
        assert status == 200 and out["labelName"] == label, out
    invoked = out
    # A label without samples has no place in the model, but is listed (at 0) like every label.
    assert api.call("POST", f"{base}/labels", {"name": "dog"})[0] == 200
    status, out, _ = api.call("POST", f"{base}/invoke", {"data": _uri(cats[3])},
                              query="capture=false")
    assert status == 200 and [c["labelName"] for c in out["labelConfidences"]][2:] == ["dog"]
    assert out["labelConfidences"][2]["confidence"] == 0.0 and out["labelName"] == "cat"
    records = api.call("GET", f"{base}/invokes")[1]
    assert urlsplit(records[0]["data"]).path.startswith(f"{base}/images/")
    # Feedback on the invoke: the stored picture becomes an annotated sample.
    status, fed, _ = api.call("PUT", f"{base}/samples/{invoked['sampleId']}/annotation",
                              {"labelName": "cup"})
    assert status == 200 and fed["origin"] == "InvokeFeedback", fed
    assert api.call("GET", urlsplit(fed["data"]).path)[1] == cups[3]
    assert _views(base, fed["id"]).shape == (6, 1280)


@pytest.mark.parametrize(("data", "says"), [
    ("a photo of a cat", "data: an Image function takes a data URI"),
    ("data:image/png;base64," + base64.b64encode(b"not a png").decode(),
     "data: declared image/png, but holds no image format"),
    ("https://169.254.169.254/latest/meta-data/", "data: the host"),
    ("http://127.0.0.1:9/cat.jpg", "data: only https URLs are fetched"),
    ("data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 64).decode(),
     "data: not an image in a supported format"),
])
def test_image_data_that_is_no_image_is_a_400_naming_data(image_api, data, says):
    api = image_api
    fid = api.call("POST", "/v1/functions", {"name": "pets", "input": "Image"})[1]["id"]
    api.call("POST", f"/v1/functions/{fid}/labels", {"name": "cat"})
    for path, body in ((f"/v1/functions/{fid}/samples", {"data": data}),
                       (f"/v1/functions/{fid}/invoke", {"data": data})):
        status, out, _ = api.call("POST", path, body)
        assert status in (400, 409) and (status == 409 or out["message"].startswith(says)), (
            path, out)
    status, out, _ = api.call("POST", f"/v1/functions/{fid}/samples", {"data": data})
    assert status == 400 and out["message"].startswith(says), out


def test_an_image_function_takes_only_the_image_encoder(image_api):
    status, out, _ = image_api.call("POST", "/v1/functions", {"name": "x", "input": "Image",
                                                              "encoder": "fast"})
    assert status == 400 and out["message"].startswith("encoder: an Image function"), out
    status, out, _ = image_api.call("POST", "/v1/functions", {"name": "x", "input": "Tabular"})
    assert status == 400 and out["message"].startswith("input: 'Tabular'"), out


def test_image_invokes_are_captured_with_their_pictures_and_reviewed(image_api, sample_photos):
    """Capture works on embeddings: a captured invoke's `data` serves the picture it was
    given (kept before the capture is written), an identical picture is not captured twice,
    and annotating it from the queue makes it a training sample."""
    api = image_api
    base = _pets(api)
    _annotated(api, base, _crops(sample_photos["chelsea.png"], 3),
               _crops(sample_photos["coffee.png"], 3))
    assert not any(r["batchItemFailures"] for r in api.train())
    status, body, _ = api.call("PUT", f"{base}/capture", {"strategies": {
        "random": {"rate": 1.0, "quota": 10}, "uncertainty": {"quota": 0},
        "rare_class": {"quota": 0}}})
    assert status == 200, body
    rocket, astronaut = (_jpeg(Image.open(io.BytesIO(sample_photos[n])))
                         for n in ("rocket.jpg", "astronaut.png"))
    for data in (rocket, astronaut, rocket):
        assert api.call("POST", f"{base}/invoke", {"data": _uri(data)})[0] == 200
    queue = api.call("GET", f"{base}/review")[1]
    assert sorted(i["captureReason"] for i in queue) == ["random", "random"]  # not rocket twice
    served = sorted(api.call("GET", urlsplit(i["data"]).path)[1] for i in queue)
    assert served == sorted([rocket, astronaut])
    status, sample, _ = api.call("PUT", f"{base}/samples/{queue[0]['id']}/annotation",
                                 {"labelName": "cup"})
    assert status == 200 and sample["origin"] == "InvokeCapture" and "inReviewQueue" not in sample
    assert len(api.call("GET", f"{base}/review")[1]) == 1
    # Views come with a picture's first annotation, not with its capture.
    assert _views(base, sample["id"]).shape == (6, 1280) and _views(base, queue[1]["id"]) is None



def test_the_local_stack_setting_lets_image_urls_reach_loopback(image_api, encoders,
                                                               sample_photos, monkeypatch):
    """LABELLOOP_IMAGE_URLS_ALLOW_LOOPBACK (`labelloop local --allow-loopback-image-urls`): a
    picture served on this machine becomes a sample; other private addresses stay refused."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    photo = sample_photos["chelsea.png"]

    class Site(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200 if self.path == "/cat.png" else 404)
            self.send_header("Content-Length", str(len(photo) if self.path == "/cat.png" else 0))
            self.end_headers()
            if self.path == "/cat.png":
                self.wfile.write(photo)

    monkeypatch.setenv("LABELLOOP_IMAGE_URLS_ALLOW_LOOPBACK", "1")
    install_containers(encoders)  # new containers: they read the setting
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = _pets(image_api)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        status, sample, _ = image_api.call("POST", f"{base}/samples", {
            "data": f"{url}/cat.png", "annotation": {"labelName": "cat"}})
        assert status == 200, sample
        assert image_api.call("GET", urlsplit(sample["data"]).path)[1] == photo
        for data, says in ((f"{url}/dog.png", "data: the URL answered HTTP 404"),
                           ("http://10.0.0.8/cat.png", "data: the host")):
            status, out, _ = image_api.call("POST", f"{base}/samples", {"data": data})
            assert status == 400 and out["message"].startswith(says), out
    finally:
        server.shutdown()


def test_batch_invoke_takes_data_uris_and_keys_under_the_functions_input_prefix(
        image_api, aws, sample_photos):
    """Items by data URI or s3:// key (only under inputs/<function id>/ of the stack's bucket);
    each bad item gets its own error line; results, invoke records and stored pictures as for
    one-by-one invokes, so feedback on a batch item's sampleId works."""
    import boto3
    from test_batch import all_results, drain, status, submit

    api = image_api
    base = _pets(api)
    cats, cups = _crops(sample_photos["chelsea.png"], 4), _crops(sample_photos["coffee.png"], 4)
    _annotated(api, base, cats, cups)
    assert not any(r["batchItemFailures"] for r in api.train())
    fid = base.rsplit("/", 1)[1]
    bare = fid.removeprefix("function_")
    bucket, s3 = aws["LABELLOOP_BUCKET"], boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=f"inputs/{bare}/cat.jpg", Body=cats[3])
    s3.put_object(Bucket=bucket, Key=f"inputs/{bare}/notes.jpg", Body=b"not a picture")
    s3.put_object(Bucket=bucket, Key="inputs/someone-else/cat.jpg", Body=cats[3])
    items = [
        {"id": "cat", "data": f"s3://{bucket}/inputs/{bare}/cat.jpg"},
        {"id": "cup", "data": _uri(cups[3])},
        {"id": "other", "data": f"s3://{bucket}/inputs/someone-else/cat.jpg"},
        {"id": "elsewhere", "data": f"s3://{bucket}/functions/{bare}/images/x"},
        {"id": "url", "data": "https://example.com/cat.jpg"},
        {"id": "missing", "data": f"s3://{bucket}/inputs/{bare}/dog.jpg"},
        {"id": "notes", "data": f"s3://{bucket}/inputs/{bare}/notes.jpg"},
        {"id": "text", "data": "a cat"}]
    # Not captured: a captured item is a sample already, and feedback below must make one.
    job = submit(api, fid, items, capture=False)
    drain(api)
    assert status(api, fid, job["id"])["state"] == "Succeeded"
    lines = {line["id"]: line for line in all_results(api, fid, job["id"])}
    assert (lines["cat"]["labelName"], lines["cup"]["labelName"]) == ("cat", "cup"), lines
    says = {k: v.get("error", "") for k, v in lines.items()}
    prefix = f"data: an s3:// item must name an object under s3://{bucket}/inputs/{bare}/"
    assert says["other"] == says["elsewhere"] == prefix
    assert says["url"].startswith("data: batch invoke takes data URIs and s3:// keys")
    assert says["missing"] == f"data: no object s3://{bucket}/inputs/{bare}/dog.jpg"
    assert says["notes"].startswith("data: not an image")
    assert says["text"].startswith("data: an Image function takes a data URI")
    # The invoke's picture is stored with its record: feedback makes it a sample.
    status_code, fed, _ = api.call("PUT", f"{base}/samples/{lines['cat']['sampleId']}/annotation",
                                   {"labelName": "cat"})
    assert status_code == 200 and fed["origin"] == "InvokeFeedback", fed
    assert api.call("GET", urlsplit(fed["data"]).path)[1] == cats[3]
    # Deleting the function deletes its batch inputs too.
    assert api.call("DELETE", base)[0] == 200
    left = s3.list_objects_v2(Bucket=bucket, Prefix="inputs/").get("Contents", [])
    assert [o["Key"] for o in left] == ["inputs/someone-else/cat.jpg"]


def test_a_deployment_links_pictures_by_presigned_urls_any_client_can_fetch(
        image_api, sample_photos, monkeypatch):
    """As the stack deploys it (LABELLOOP_IMAGE_LINKS=presigned): a sample's `data` is a
    Signature V4 presigned GET of its picture in the bucket, fetched here without the API's
    token, and the console's policy lets the page show pictures from that origin."""
    import requests

    from labelloop import container

    monkeypatch.setenv("LABELLOOP_IMAGE_LINKS", "presigned")
    monkeypatch.setenv("LABELLOOP_IMAGE_LINK_SECONDS", "600")
    d = container.Deps()
    d.__dict__["encoders"] = container.deps().encoders
    container.reset(d)
    api = image_api
    base = _pets(api)
    created = _annotated(api, base, _crops(sample_photos["chelsea.png"], 3),
                         _crops(sample_photos["coffee.png"], 3))
    fid = base.rsplit("/", 1)[1].removeprefix("function_")
    listed = {s["id"]: s["data"] for s in api.call("GET", f"{base}/samples")[1]}
    for sample, data in created:
        for url in (sample["data"], listed[sample["id"]]):
            parts = urlsplit(url)
            query = dict(p.split("=", 1) for p in parts.query.split("&"))
            assert parts.scheme == "https" and parts.path.endswith(
                f"/functions/{fid}/images/{hashlib.sha256(data).hexdigest()}"), url
            assert query["X-Amz-Expires"] == "600" and "X-Amz-Signature" in query, url
            got = requests.get(url, timeout=10)  # no token: the signature is the permission
            assert got.status_code == 200 and got.content == data
            assert got.headers["Content-Type"] == "image/jpeg"
    policy = api.call("GET", "/console")[2]["Content-Security-Policy"]
    origin = f"{urlsplit(created[0][0]['data']).scheme}://{urlsplit(created[0][0]['data']).netloc}"
    assert f"img-src 'self' data: blob: {origin};" in policy, policy
