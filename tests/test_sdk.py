"""The official `nyckel` SDK, unchanged, against the local stack on port 5000 (the SDK pages
only through URLs containing ":5000")."""

from __future__ import annotations

import time

import nyckel
import pytest
from test_api import SAMPLES

from labelloop.client import Client


def wait_trained(func, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not func.has_trained_model():
        assert time.time() < deadline, "the function did not train in time"
        time.sleep(0.5)


def test_the_nyckel_sdk_drives_the_local_stack(local_stack):
    creds = nyckel.Credentials(local_stack.client_id, local_stack.client_secret,
                               server_url=local_stack.url)
    func = nyckel.TextClassificationFunction.create("support-sdk", creds)
    assert not func.has_trained_model()
    ids = func.create_samples(SAMPLES)
    assert len(ids) == len(SAMPLES) and len(set(ids)) == len(SAMPLES)
    # A duplicate returns the existing id (409 with existingSampleId).
    assert func.create_samples([SAMPLES[0]]) == [ids[0]]
    assert sorted(lb.name for lb in func.list_labels()) == ["billing", "bug"]
    wait_trained(func)

    predictions = func.invoke(["my invoice shows the wrong amount", "the app keeps crashing"])
    assert [p.label_name for p in predictions] == ["billing", "bug"]
    assert all(0.5 < p.confidence <= 1 for p in predictions)
    # With a decision policy the answers carry decision fields; the SDK reads what it knows.
    ours = Client(local_stack.url, local_stack.client_id, local_stack.client_secret)
    ours.set_thresholds(func.function_id, {"accept": {"confidence": 0.7},
                                           "review": {"confidence": 0.4}})
    assert ours.invoke(func.function_id, "the app keeps crashing")["decisionThreshold"] == 0.7
    again = func.invoke(["my invoice shows the wrong amount", "the app keeps crashing"])
    assert [(p.label_name, p.confidence) for p in again] == [
        (p.label_name, p.confidence) for p in predictions]

    samples = func.list_samples()
    # Invokes the capture kept for review are samples too, unannotated (as on Nyckel).
    assert sorted(s.data for s in samples if s.annotation) == sorted(t for t, _ in SAMPLES)
    assert {s.data for s in samples if not s.annotation} <= {
        "my invoice shows the wrong amount", "the app keeps crashing"}
    assert all(s.prediction is not None for s in samples)
    sample = func.read_sample(ids[3])
    assert sample.data == SAMPLES[3][0] and sample.annotation.label_name == "bug"

    sample.annotation = nyckel.ClassificationAnnotation(label_name="billing")
    func.update_annotation(sample)
    assert func.read_sample(ids[3]).annotation.label_name == "billing"
    sample.annotation = None
    func.update_annotation(sample)
    assert func.read_sample(ids[3]).annotation is None

    func.delete_samples(ids[:2])
    assert len([s for s in func.list_samples() if s.annotation]) == len(SAMPLES) - 3
    label = func.list_labels()[0]
    label.description = "updated"
    func.update_label(label)
    assert func.read_label(label.id).description == "updated"
    func.delete()
    with pytest.raises(ValueError):
        nyckel.TextClassificationFunction(func.function_id, creds)


def test_the_nyckel_sdk_drives_an_image_function(local_stack, image_encoder_dir, sample_photos,
                                                 tmp_path):
    """`ImageClassificationFunction` unchanged: PIL images and file paths in, the SDK's own
    JPEG data URIs on the wire; samples come back with a URL that serves the picture."""
    import io
    import json
    import urllib.request
    from urllib.parse import urlencode

    from PIL import Image

    creds = nyckel.Credentials(local_stack.client_id, local_stack.client_secret,
                               server_url=local_stack.url)
    func = nyckel.ImageClassificationFunction.create("pets-sdk", creds)
    crops = {}
    for name, label in (("chelsea.png", "cat"), ("coffee.png", "cup")):
        img = Image.open(io.BytesIO(sample_photos[name])).convert("RGB")
        w, h = img.size
        crops[label] = [img.crop((i * w // 20, i * h // 30, w - (4 - i) * w // 25,
                                  h - i * h // 40)) for i in range(4)]
    ids = func.create_samples([(img, label) for label, imgs in crops.items()
                               for img in imgs[:3]])
    assert len(set(ids)) == 6
    assert sorted(lb.name for lb in func.list_labels()) == ["cat", "cup"]
    wait_trained(func)

    paths = []
    for label in ("cat", "cup"):
        path = tmp_path / f"{label}.jpg"
        crops[label][3].save(path)
        paths.append(str(path))
    assert [p.label_name for p in func.invoke(paths)] == ["cat", "cup"]

    sample = func.read_sample(ids[0])
    assert sample.annotation.label_name == "cat"
    form = urlencode({"grant_type": "client_credentials", "client_id": local_stack.client_id,
                      "client_secret": local_stack.client_secret}).encode()
    with urllib.request.urlopen(local_stack.url + "/connect/token", form, timeout=10) as r:
        token = json.load(r)["access_token"]
    request = urllib.request.Request(sample.data, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(response.read())).size == crops["cat"][0].size
    sample.annotation = nyckel.ClassificationAnnotation(label_name="cup")
    func.update_annotation(sample)
    assert func.read_sample(ids[0]).annotation.label_name == "cup"
    assert len(func.list_samples()) >= 6
