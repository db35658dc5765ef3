"""Everything S3: the only module in gbmseg that imports boto3.

Endpoints: ``AWS_ENDPOINT_URL_S3`` (or ``MLFLOW_S3_ENDPOINT_URL``, MLflow's name) points
the client at a MinIO-like store; credentials come from the standard AWS chain.  Every
client uses botocore's ``standard`` retry mode (exponential back-off with jitter on
throttling, 5xx and connection errors) and bounded timeouts, so a flaky endpoint is
retried and a dead one becomes one clear :class:`StorageError` instead of a hang.

Folders are uploaded object by object and a ``_COMPLETE`` marker (with the file list and
sha256 of each) is written last: a reader that finds no marker knows the upload did not
finish, so nothing half-uploaded is ever taken for data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gbmseg.data.atomic import atomic_dir, sha256_file
from gbmseg.errors import StorageError

log = logging.getLogger(__name__)
MARKER = "_COMPLETE"


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://") or len(uri) <= 5:
            raise StorageError(f"{uri!r} is not an s3://BUCKET/PREFIX URI")
        bucket, _, key = uri[5:].partition("/")
        return cls(bucket, key.strip("/"))

    def join(self, *parts: str) -> str:
        return "/".join(p for p in (self.key, *parts) if p)


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("MLFLOW_S3_ENDPOINT_URL")


def client(endpoint_url: str | None = None, attempts: int = 5, timeout: float = 10.0):
    cfg = Config(
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout * 3,
    )
    return boto3.client("s3", endpoint_url=endpoint_url or endpoint(), config=cfg)


def _fail(what: str, exc: Exception, s3) -> StorageError:
    where = s3.meta.endpoint_url
    return StorageError(
        f"S3 {what} failed at {where} after retries ({type(exc).__name__}: {exc}); check "
        "the endpoint (AWS_ENDPOINT_URL_S3), credentials and network, then run again"
    )


def ensure_bucket(name: str, s3=None) -> None:
    s3 = s3 or client()
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise _fail(f"head_bucket {name}", exc, s3) from exc
        s3.create_bucket(Bucket=name)
        log.info("created bucket s3://%s", name)
    except BotoCoreError as exc:
        raise _fail(f"head_bucket {name}", exc, s3) from exc


def list_keys(uri: str, s3=None) -> list[str]:
    s3, u = s3 or client(), S3Uri.parse(uri)
    keys: list[str] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=u.bucket, Prefix=u.key + "/" if u.key else ""
        )
        for page in pages:
            keys += [o["Key"] for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise _fail(f"list {uri}", exc, s3) from exc
    return keys


def upload_dir(local: str | Path, uri: str, s3=None) -> dict[str, str]:
    """Upload every file below ``local`` to ``uri``; the marker goes last."""
    s3, u, local = s3 or client(), S3Uri.parse(uri), Path(local)
    files = sorted(q for q in local.rglob("*") if q.is_file())
    digests = {q.relative_to(local).as_posix(): sha256_file(q) for q in files}
    try:
        s3.delete_object(Bucket=u.bucket, Key=u.join(MARKER))  # a re-upload is incomplete too
        for rel in digests:
            s3.upload_file(str(local / rel), u.bucket, u.join(rel))
        s3.put_object(Bucket=u.bucket, Key=u.join(MARKER), Body=json.dumps(digests).encode())
    except (BotoCoreError, ClientError) as exc:
        raise _fail(f"upload of {local} to {uri}", exc, s3) from exc
    log.info("uploaded %d files to %s", len(digests), uri)
    return digests


def read_marker(uri: str, s3=None) -> bytes:
    """The ``_COMPLETE`` marker of a finished upload; StorageError when there is none."""
    s3, u = s3 or client(), S3Uri.parse(uri)
    try:
        return s3.get_object(Bucket=u.bucket, Key=u.join(MARKER))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise StorageError(
                f"{uri}: no {MARKER} marker, so the upload never finished (or never began); "
                f"upload it with `gbmseg storage push LOCAL {uri}`"
            ) from exc
        raise _fail(f"read of {uri}/{MARKER}", exc, s3) from exc
    except BotoCoreError as exc:
        raise _fail(f"read of {uri}/{MARKER}", exc, s3) from exc


def parse_marker(uri: str, blob: bytes) -> dict[str, str]:
    """The marker's file list, refused when anyone with write access to the bucket made it
    name a path outside the folder (``..``, absolute, backslashes), repeat a name, or carry
    something other than sha256 digests."""

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise StorageError(f"{uri}/{MARKER}: lists {dup[:3]} more than once; refused")
        return dict(pairs)

    try:
        digests = json.loads(blob, object_pairs_hook=no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(f"{uri}/{MARKER}: not a valid marker ({exc}); refused") from exc
    if not isinstance(digests, dict):
        raise StorageError(f"{uri}/{MARKER}: not a file -> sha256 mapping; refused")
    for rel, digest in digests.items():
        parts = PurePosixPath(rel).parts
        unsafe = (
            not rel
            or rel.startswith("/")
            or "\\" in rel
            or ".." in parts
            or ":" in rel
            or not isinstance(digest, str)
            or len(digest) != 64
        )
        if unsafe:
            raise StorageError(
                f"{uri}/{MARKER}: entry {rel!r} is not a plain relative path with a sha256; "
                "refused, nothing written (someone edited the marker?)"
            )
    return digests


def download_dir(uri: str, local: str | Path, s3=None) -> dict[str, str]:
    """Download a folder written by :func:`upload_dir` into ``local`` atomically, checking
    the marker's sha256 of every file; no marker = an unfinished upload = refused; a marker
    naming paths outside the folder = refused before anything is written."""
    s3, u = s3 or client(), S3Uri.parse(uri)
    digests = parse_marker(uri, read_marker(uri, s3))
    with atomic_dir(local) as tmp:
        for rel, digest in digests.items():
            dest = tmp / rel
            if not dest.resolve().is_relative_to(tmp.resolve()):  # e.g. through a symlink
                raise StorageError(f"{uri}/{MARKER}: {rel!r} leads outside the folder; refused")
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                s3.download_file(u.bucket, u.join(rel), str(dest))
            except (BotoCoreError, ClientError) as exc:
                raise _fail(f"download of {uri}/{rel}", exc, s3) from exc
            if sha256_file(dest) != digest:
                raise StorageError(f"{uri}/{rel}: sha256 differs from the upload's marker")
    return digests
