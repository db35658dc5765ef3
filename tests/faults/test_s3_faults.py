"""Hostile and failing S3 stores: the endpoint flaky (connections reset: retried, the upload
completes) or dying mid-upload (one clear StorageError; no _COMPLETE marker, so the half
upload is refused by every reader); a marker naming paths outside the destination; a bit
flipped in the DVC remote."""

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest

from gbmseg import storage
from tests.servers import S3_CREDENTIALS, s3_server

pytestmark = [pytest.mark.faults, pytest.mark.integration]


class Proxy:
    """TCP proxy on loopback in front of the S3 server: resets the first ``drop``
    connections, and after ``die_after_puts`` PUT requests cuts everything."""

    def __init__(self, upstream: str, drop: int = 0, die_after_puts: int | None = None):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.drop, self.die_after, self.puts, self.dropped = drop, die_after_puts, 0, 0
        self.dead = False
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.dead or self.dropped < self.drop:
                self.dropped += 1
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                conn.close()  # RST
                continue
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, False), daemon=True).start()

    def _pump(self, src, dst, client_side):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if client_side:
                    self.puts += data.count(b"PUT /")
                    if self.die_after is not None and self.puts > self.die_after:
                        self.dead = True
                if self.dead:
                    break
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3f")) as url:
        yield url


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(20_000))
    return src


def test_flaky_endpoint_is_retried_and_the_upload_completes(s3, folder, tmp_path):
    storage.ensure_bucket("flaky", storage.client(s3))
    proxy = Proxy(s3, drop=2)
    try:
        client = storage.client(proxy.url, attempts=5, timeout=5)
        storage.upload_dir(folder, "s3://flaky/data", client)
        assert proxy.dropped == 2
        storage.download_dir("s3://flaky/data", tmp_path / "back", storage.client(s3))
    finally:
        proxy.close()
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == [f"f{i}.bin" for i in range(6)]


def test_endpoint_dying_mid_upload_leaves_nothing_that_passes_for_data(s3, folder, tmp_path):
    storage.ensure_bucket("dying", storage.client(s3))
    proxy = Proxy(s3, die_after_puts=3)
    try:
        with pytest.raises(storage.StorageError, match=r"upload of .* failed .* after retries"):
            storage.upload_dir(folder, "s3://dying/data", storage.client(proxy.url, 3, 2))
    finally:
        proxy.close()
    direct = storage.client(s3)
    keys = storage.list_keys("s3://dying/data", direct)
    assert 0 < len(keys) < 6 and "data/_COMPLETE" not in keys  # really half uploaded
    with pytest.raises(storage.StorageError, match="upload never finished"):
        storage.download_dir("s3://dying/data", tmp_path / "x", direct)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("marker", "why"),
    [
        ('{"../victim.txt": "%s"}', "not a plain relative path"),
        ('{"/tmp/abs.txt": "%s"}', "not a plain relative path"),
        ('{"a\\\\..\\\\..\\\\b.txt": "%s"}', "not a plain relative path"),
        ('{"f0.bin": "%s", "f0.bin": "%s"}', "more than once"),
        ('{"f0.bin": "not-a-digest"}', "not a plain relative path with a sha256"),
        ("[1, 2]", "not a file -> sha256 mapping"),
    ],
    ids=["dotdot", "absolute", "backslash", "duplicate", "bad-digest", "not-a-mapping"],
)
def test_a_hostile_marker_is_refused_and_nothing_is_written(s3, folder, tmp_path, marker, why):
    """Anyone who can write to the bucket can edit _COMPLETE: a marker naming paths outside
    the destination, or malformed, is refused before a single file is written."""
    client = storage.client(s3)
    storage.ensure_bucket("hostile", client)
    storage.upload_dir(folder, "s3://hostile/data", client)
    digest = "0" * 64
    body = marker.replace("%s", digest)
    client.put_object(Bucket="hostile", Key="data/_COMPLETE", Body=body.encode())
    client.put_object(Bucket="hostile", Key="victim.txt", Body=b"overwritten")
    dest = tmp_path / "inner" / "dest"
    dest.parent.mkdir()
    before = sorted(str(q) for q in tmp_path.rglob("*"))
    with pytest.raises(storage.StorageError, match=why):
        storage.download_dir("s3://hostile/data", dest, client)
    assert sorted(str(q) for q in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert not Path("/tmp/abs.txt").exists()


def test_a_bit_flip_in_the_dvc_remote_is_caught_on_pull(s3, tmp_path, monkeypatch):
    """The project's DVC remote verifies what it downloads (`verify = true`): an object
    changed in the store fails `dvc pull` with a hash error and the workspace gets nothing
    corrupt."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    bindir = Path(sys.executable).parent
    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}

    def dvc(cwd, *args, check=True):
        return subprocess.run(
            [str(bindir / "dvc"), *args],
            cwd=cwd,
            env=env,
            check=check,
            capture_output=True,
            text=True,
        )

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        subprocess.run(["git", "clone", "-q", str(ROOT), str(d)], check=True)
        dvc(d, "remote", "modify", "--local", "s3", "endpointurl", s3)
    subprocess.run(
        [str(bindir / "gbmseg"), "synth"], cwd=a, env=env, check=True, capture_output=True
    )
    dvc(a, "commit", "-f", "-q", "data.dvc")
    client = storage.client(s3)
    storage.ensure_bucket("gbmseg-dvc", client)
    dvc(a, "push", "data.dvc")
    key = sorted(
        k for k in storage.list_keys("s3://gbmseg-dvc/store", client) if not k.endswith(".dir")
    )[0]
    body = bytearray(client.get_object(Bucket="gbmseg-dvc", Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01  # one flipped bit
    client.put_object(Bucket="gbmseg-dvc", Key=key, Body=bytes(body))
    res = dvc(b, "pull", "data.dvc", check=False)
    said = (res.stdout + res.stderr).lower()
    assert res.returncode != 0 and ("checkout failed" in said or "corrupt" in said), said
    good = {
        q.relative_to(a): q.read_bytes() for q in (a / "data" / "raw").rglob("*") if q.is_file()
    }
    pulled = b / "data" / "raw"
    got = {q.relative_to(b): q.read_bytes() for q in pulled.rglob("*") if q.is_file()}
    assert all(good[k] == v for k, v in got.items())  # whatever arrived is the uploaded bytes
    assert len(got) < len(good)  # and the flipped object did not arrive
