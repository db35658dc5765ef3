"""The S3 endpoint flaky (connections reset: retried, the upload completes) and
dying mid-upload (one clear StorageError; no _COMPLETE marker, so the half upload is
refused by every reader)."""

import contextlib
import os
import socket
import threading

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
