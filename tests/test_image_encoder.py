"""The image encoder's requirements: fidelity to the torch reference (preprocessing included),
batch invariance, orientation and transparency handled, and bad bytes refused with a reason."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from labelloop import imaging
from labelloop.image_encoder import power_normalize
from labelloop.imaging import ImageError


@pytest.fixture(scope="module")
def reference():
    """torch's pooled features, power-normalised as the encoder's output is."""
    z = np.load(FIXTURES / "reference_embeddings-image.npz")
    return dict(zip((str(n) for n in z["names"]), power_normalize(z["embeddings"]),
                    strict=True))


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def test_the_build_is_pinned_and_describes_its_preprocessing(image_encoder_dir):
    m = json.loads((image_encoder_dir / "manifest.json").read_text())
    assert m["encoder"] == "image" and m["dim"] == 1280 and m["name"] == "efficientnet-lite0"
    assert (m["image_size"], m["resize"], m["mean"], m["std"]) == (
        imaging.SIZE, imaging.RESIZE, imaging.MEAN, imaging.STD)
    weights = next(s for s in m["sources"] if s["file"].endswith(".pth"))
    assert weights["sha256"].startswith("579344248a93e230")
    assert "tokenizer.json" not in m["files"]


def test_every_photo_embeds_as_the_torch_reference_does(image_encoder, sample_photos, reference):
    """Decoding, transparency on white, grey to RGB, resize and crop in Pillow, then ONNX,
    against torch's own resize and crop on independently decoded pixels."""
    assert set(reference) == set(sample_photos)
    for name, data in sample_photos.items():
        emb = image_encoder.embed_one(data)
        assert emb.shape == (1280,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-5
        assert float(emb @ reference[name]) >= 0.995, name


def test_photos_are_told_apart(image_encoder, sample_photos):
    embs = image_encoder.embed(list(sample_photos.values()))
    sims = embs @ embs.T
    np.fill_diagonal(sims, 0)
    assert sims.max() < 0.8  # different photos are not near-duplicates of each other


def test_an_embedding_does_not_depend_on_its_batch(image_encoder, sample_photos):
    photos = list(sample_photos.values())
    batched = image_encoder.featurize(photos, batch_size=4)  # two batches, one partial
    alone = np.stack([image_encoder.embed_one(p) for p in photos])
    assert np.abs(batched.embeddings - alone).max() < 1e-6
    assert all(t.size == 0 for t in batched.tokens)  # no lexical part for images


def test_exif_orientation_is_applied(image_encoder, sample_photos):
    upright = Image.open(io.BytesIO(sample_photos["chelsea.png"])).convert("RGB")
    # Stored turned a quarter; tag 6 says "rotate 90° clockwise to view", which undoes it.
    turned = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    plain = image_encoder.embed_one(_jpeg(upright))
    tagged = image_encoder.embed_one(_jpeg(turned, exif=exif))
    untagged = image_encoder.embed_one(_jpeg(turned))
    assert float(plain @ tagged) > 0.97
    assert float(plain @ untagged) < float(plain @ tagged) - 0.05


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (100, 100, 200, 200))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    rgb = np.asarray(imaging.decode(buf.getvalue()))
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[150, 150].tolist() == [0, 0, 255]


@pytest.mark.parametrize("mode", ["L", "I;16", "P", "LA", "CMYK"])
def test_every_pixel_mode_becomes_rgb(mode):
    img = Image.new("RGB", (320, 240), (200, 120, 40)).convert(
        "L" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 256)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    px = imaging.preprocess(buf.getvalue())
    assert px.shape == (3, imaging.SIZE, imaging.SIZE) and px.dtype == np.float32
    assert np.isfinite(px).all() and px.min() >= -1.0 and px.max() <= 1.0


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize(("data", "says"), [
    (b"", "not an image"),
    (b"hello, this is text", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    (None, "cannot be decoded"),  # a truncated JPEG, made below
    (None, "too many pixels"),  # a small file of 64 million pixels
    (None, "supported format"),  # a TIFF
])
def test_bad_bytes_are_refused_with_a_reason(data, says, sample_photos):
    if says == "cannot be decoded":
        whole = _jpeg(Image.open(io.BytesIO(sample_photos["chelsea.png"])).convert("RGB"))
        data = whole[: len(whole) // 2]
    elif says == "too many pixels":
        data = _png(8000, 8000)
        assert len(data) < 200_000  # a bomb: tiny on the wire
    elif data is None:
        buf = io.BytesIO()
        Image.new("RGB", (64, 64)).save(buf, format="TIFF")
        data = buf.getvalue()
    with pytest.raises(ImageError, match=says):
        imaging.preprocess(data)


def _variants(photo: bytes, n: int) -> list[bytes]:
    """n different crops of a photo, as a user's several pictures of one thing."""
    img = Image.open(io.BytesIO(photo)).convert("RGB")
    w, h = img.size
    return [_jpeg(img.crop((i * w // 20, i * h // 30, w - (n - i) * w // 25, h - i * h // 40)))
            for i in range(n)]


def test_an_image_head_learns_from_samples_alone(image_encoder, sample_photos):
    """No zero-shot and no lexical part: a head from embeddings, that tells held-out pictures
    apart; with samples of one label only, there is nothing to build."""
    from labelloop.ml.build import LabelSpec, NeedsSamples, build_model

    cats, cups = _variants(sample_photos["chelsea.png"], 4), _variants(
        sample_photos["coffee.png"], 4)
    train = image_encoder.featurize(cats[:3] + cups[:3])
    labels = [LabelSpec("cat"), LabelSpec("cup"), LabelSpec("rocket")]
    model = build_model(image_encoder, labels, train, ["cat"] * 3 + ["cup"] * 3)
    assert not model.zero_shot and model.cv_accuracy is not None
    assert list(model.head.classes_) == ["cat", "cup"]  # nothing to learn "rocket" from
    held = image_encoder.featurize([cats[3], cups[3]])
    proba = model.head.predict_proba(held.embeddings, held.tokens)
    assert list(model.head.classes_[proba.argmax(1)]) == ["cat", "cup"]
    with pytest.raises(NeedsSamples, match="samples of 2 labels"):
        build_model(image_encoder, labels, train.take(np.arange(3)), ["cat"] * 3)


def _uri(subtype: str, data: bytes) -> str:
    return f"data:image/{subtype};base64," + base64.b64encode(data).decode()


def test_data_uris_as_the_sdk_sends_them_give_the_image(sample_photos):
    from labelloop.image_source import image_bytes

    jpeg = _jpeg(Image.open(io.BytesIO(sample_photos["coffee.png"])).convert("RGB"))
    assert image_bytes(_uri("jpg", jpeg)) == jpeg  # the SDK's own spelling
    assert image_bytes(_uri("jpeg", jpeg)) == jpeg
    assert image_bytes(_uri("png", sample_photos["logo.png"])) == sample_photos["logo.png"]
    named = "data:image/png;name=logo.png;base64," + base64.b64encode(
        sample_photos["logo.png"]).decode()
    assert image_bytes(named) == sample_photos["logo.png"]


@pytest.mark.parametrize(("data", "says"), [
    (123, "data: must be a string"),
    ("a cat on a sofa", "data: an Image function takes a data URI"),
    ("data:text/plain;base64,aGk=", "data: not a base64 image data URI"),
    ("data:image/png,rawbytes", "data: not a base64 image data URI"),
    ("data:image/tiff;base64,SUkqAA==", r"data: image/tiff is not supported"),
    ("data:image/png;base64,not base64!", "data: the data URI's payload is not valid base64"),
    ("data:image/png;base64,", "data: the data URI holds no image"),
    ("JPEG-AS-PNG", "data: declared image/png, but holds JPEG data"),
    ("TEXT-AS-JPEG", "data: declared image/jpeg, but holds no image format"),
    ("ftp://example.com/cat.jpg", "data: an Image function takes"),
    ("https://169.254.169.254/latest/meta-data/", "data: the host .* is not a public address"),
])
def test_image_data_that_is_not_an_image_is_a_400_naming_the_field(data, says, sample_photos):
    from labelloop.errors import BadRequest
    from labelloop.image_source import image_bytes

    if data == "JPEG-AS-PNG":
        data = _uri("png", _jpeg(Image.new("RGB", (8, 8))))
    elif data == "TEXT-AS-JPEG":
        data = _uri("jpeg", b"just some text")
    with pytest.raises(BadRequest, match=says) as err:
        image_bytes(data)
    assert err.value.status == 400


def test_training_views_are_the_same_picture_seen_a_little_differently(image_encoder,
                                                                       sample_photos):
    photo = sample_photos["chelsea.png"]
    features, views = image_encoder.featurize_with_views(photo)
    assert np.abs(features.embeddings[0] - image_encoder.embed_one(photo)).max() < 1e-6
    assert views.shape == (imaging.N_VIEWS, 1280)
    sims = views @ features.embeddings[0]
    assert (sims > 0.8).all() and (sims < 0.995).all(), sims  # the same cat, moved or turned
    assert len({round(float(s), 4) for s in sims}) == imaging.N_VIEWS  # six different views


def test_a_turned_view_fills_the_corners_it_uncovers_with_the_border_colour():
    img = Image.new("RGB", (64, 48), (30, 160, 90))
    img.paste((250, 250, 250), (28, 20, 36, 28))  # a mark in the middle
    border = (np.array([30, 160, 90], np.float32) - imaging.MEAN) / imaging.STD
    for view in imaging.view_pixels(img):
        corners = view[:, [0, 0, -1, -1], [0, -1, 0, -1]].T
        np.testing.assert_allclose(corners, np.tile(border, (4, 1)), atol=0.02)
        assert view.max() > 0.9  # the mark is in every view
