"""S3 objects, with every key shape: a model version's immutable artifacts, an image
function's images (by content hash), batch-invoke inputs (put by the user) and results, and
assets fetched by URI (the accurate encoder's model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from botocore.exceptions import ClientError

from labelloop.errors import BadRequest, NotFound

# A model version's artifacts, under functions/<fid>/models/<version:08d>/.
HEAD = "head.npz"
META = "model.json"
QUALITY = "quality.json"
# The version's training embeddings (float16, in `model.json`'s `trained` order), for capture's
# near-duplicate check: one object read per version and container, where reading them back
# from the samples took 40 MB of queries at 20,000 samples (and timed out on the local stack).
TRAINED_EMBEDDINGS = "trained.npy"

BATCH_PREFIX = "batches/"
# What a user puts in the bucket for an Image function's batch invoke (`s3://` items).
INPUT_PREFIX = "inputs/"


def artifact_key(fid: str, version: int, name: str) -> str:
    return f"functions/{fid}/models/{version:08d}/{name}"


def image_key(fid: str, digest: str) -> str:
    """An image of a function's samples or invokes, named by its bytes' sha256: stored once."""
    return f"functions/{fid}/images/{digest}"


def input_prefix(fid: str) -> str:
    return f"{INPUT_PREFIX}{fid}/"


def results_prefix(fid: str, job_id: str) -> str:
    return f"{BATCH_PREFIX}{fid}/{job_id}/"


def results_key(fid: str, job_id: str, part: int) -> str:
    return f"{results_prefix(fid, job_id)}{part:05d}.jsonl"


def results_part(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].removesuffix(".jsonl"))


class Objects:
    def __init__(self, s3, bucket: str):
        self._s3 = s3
        self.bucket = bucket

    def put_artifact(self, fid: str, version: int, name: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=artifact_key(fid, version, name), Body=body)

    def get_artifact(self, fid: str, version: int, name: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self.bucket,
                                       Key=artifact_key(fid, version, name))["Body"].read()
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise NotFound("model artifact not found") from err  # keys stay inside
            raise

    def put_image(self, fid: str, digest: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=image_key(fid, digest), Body=body,
                            ContentType=content_type)

    def get_image(self, fid: str, digest: str) -> tuple[bytes, str]:
        """(bytes, content type)."""
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=image_key(fid, digest))
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise NotFound("image not found") from err
            raise
        return obj["Body"].read(), obj.get("ContentType", "application/octet-stream")

    def image_link(self, fid: str, digest: str, seconds: int) -> str:
        """A presigned GET of an image: any client may fetch it, until it expires, without
        this API's token (signing is local: no request is made)."""
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": image_key(fid, digest)},
            ExpiresIn=seconds)

    def get_input(self, key: str, max_bytes: int) -> bytes:
        """An object a user put under a function's input prefix (the caller checked the key)."""
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise NotFound("no such object") from err
            raise
        if obj["ContentLength"] > max_bytes:
            obj["Body"].close()
            raise BadRequest(f"data: the object is over {max_bytes // (1024 * 1024)} MiB")
        return obj["Body"].read()

    def put_results(self, fid: str, job_id: str, part: int, body: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=results_key(fid, job_id, part), Body=body,
                            ContentType="application/x-ndjson")

    def results_uri(self, fid: str, job_id: str) -> str:
        return f"s3://{self.bucket}/{results_prefix(fid, job_id)}"

    def result_keys(self, fid: str, job_id: str, after_part: int | None = None
                    ) -> Iterator[str]:
        """The job's result objects in part order, from after part `after_part` on."""
        kwargs = {"Bucket": self.bucket, "Prefix": results_prefix(fid, job_id)}
        if after_part is not None:
            kwargs["StartAfter"] = results_key(fid, job_id, after_part)
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def get_results(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, uri: str, dest: Path) -> None:
        """An object by s3:// URI to a local file (the accurate encoder's model, an asset)."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self._s3.download_file(bucket, key, str(dest))

    def delete_function(self, fid: str) -> None:
        """Every version of every object of the function: artifacts, pictures, batch inputs
        and results."""
        for prefix in (f"functions/{fid}/", f"{BATCH_PREFIX}{fid}/", input_prefix(fid)):
            self._delete_prefix(prefix)

    def _delete_prefix(self, prefix: str) -> None:
        pages = self._s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for i in range(0, len(objs), 1000):
                self._s3.delete_objects(Bucket=self.bucket,
                                        Delete={"Objects": objs[i:i + 1000], "Quiet": True})
