"""Pictures in the web console, in a real browser against the real local stack, once per way
the API links them (`LABELLOOP_IMAGE_LINKS`): its own image route (the local stack's default)
and presigned bucket URLs (what the deployed stack gives; here moto server's)."""

from __future__ import annotations

import pytest
from conftest import isolate_stack_env
from test_console import (
    annotation,
    current_id,
    label_ids,
    open_review,
    shot,
    sign_in,
    wait_for,
    wait_moved_on,
)

from labelloop.client import Client

KEY_OF_LABEL = {"cat": "1", "cup": "2"}


@pytest.fixture(scope="module", params=["api", "presigned"])
def stack(request, tmp_path_factory, encoder_dir):
    from labelloop.local.stack import LocalStack

    mp = pytest.MonkeyPatch()
    isolate_stack_env(mp, encoder_dir)
    mp.setenv("LABELLOOP_IMAGE_LINKS", request.param)
    with LocalStack(tmp_path_factory.mktemp(f"pictures-{request.param}"), port=0,
                    stage="pictures", retry_seconds=1, persist=False) as s:
        s.client = Client(s.url, s.client_id, s.client_secret)
        s.image_links = request.param
        yield s
    mp.undo()


def test_a_captured_picture_is_shown_and_annotated_from_the_review_queue(
        stack, page, image_encoder_dir, sample_photos):
    """An image function's queue: the picture behind each captured invoke's URL shows (the
    API's route: fetched with the token, which an <img> cannot send; a presigned link: as it
    is, from the bucket's origin the page's policy allows); its label key annotates it."""
    import base64
    import io

    from PIL import Image

    import build_image_encoder

    def uri(img) -> str:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()

    client = stack.client
    fid = client.create_function("pets", input="Image")["id"]
    views = {label: build_image_encoder.views(
        Image.open(io.BytesIO(sample_photos[name])).convert("RGB"), 4)
        for label, name in (("cat", "chelsea.png"), ("cup", "coffee.png"))}
    for label, imgs in views.items():
        client.create_label(fid, label)
        for img in imgs[:3]:
            client.create_sample(fid, uri(img), label)
    wait_for(lambda: client.get_function(fid).get("liveModelVersion"), timeout=90,
             what="the image model")
    assert stack.wait_idle(timeout=90)
    # The held-out pictures are other crops of the training photos: near-duplicates of them at
    # the default cosine, which capture would (rightly) skip.
    client.set_capture_policy(fid, {"random": {"rate": 1.0, "quota": 50}},
                              near_duplicate_cosine=0.9999)
    for imgs in views.values():
        client.invoke(fid, uri(imgs[3]))
    assert stack.wait_idle(timeout=60)
    assert len(client.review_queue(fid)) == 2
    ids = label_ids(stack, fid)
    # The two held-out pictures differ in width: what the page shows tells which it is.
    truth = {imgs[3].width: label for label, imgs in views.items()}
    assert len(truth) == 2

    sign_in(page, stack)
    open_review(page, stack, fid)
    shown = {}
    for _ in views:
        sid = current_id(page)
        picture = page.locator("[data-testid=review-item] [data-testid=picture]")
        page.wait_for_selector("[data-testid=review-item] [data-testid=picture]"
                               "[data-state=shown]")
        width = picture.evaluate("img => img.complete && img.naturalWidth")
        assert width in truth, (width, truth)
        src = picture.get_attribute("src")
        if stack.image_links == "api":
            assert src.startswith("blob:"), src
        else:
            assert "/images/" in src and "X-Amz-Signature=" in src, src
            assert not src.startswith(stack.url), src  # from the bucket, not through the API
        shown[sid] = truth[width]
        if len(shown) == 1:
            shot(page, f"review-image-{stack.image_links}")
        page.keyboard.press(KEY_OF_LABEL[truth[width]])
        wait_moved_on(page, sid)
    page.get_by_test_id("review-empty").wait_for()
    for sid, label in shown.items():
        wait_for(lambda sid=sid, label=label: annotation(stack, fid, sid) == ids[label],
                 what=f"{sid} annotated {label}")

    # The samples browser shows the same pictures small, the 6 samples and the 2 annotated.
    page.goto(f"{stack.url}/console/#/functions/{fid}/samples")
    page.get_by_test_id("sample-row").first.wait_for()
    thumbs = page.locator("[data-testid=sample-row] [data-testid=picture]")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=sample-row] [data-testid=picture]')]
            .every(img => img.dataset.state === 'shown' && img.naturalWidth > 0)""")
    assert thumbs.count() == 8
