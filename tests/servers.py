"""Real servers on loopback for integration tests: PostgreSQL, `mlflow server`,
`mlflow models serve`.  Each is started by the test that needs it and stopped after."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


_PORTS = itertools.count()


def free_port() -> int:
    """A free port of this test process's own range, below the OS's ephemeral range: two
    xdist workers never pick the same port (a server that cannot bind it exits, and the
    other worker's server would answer its health probe), and nothing picked by the OS
    for a client connection takes it either."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20000 + 1500 * (int(worker) if worker.isdigit() else 0) % 12000
    for _ in range(1500):
        port = base + (next(_PORTS) * 7 + os.getpid()) % 1500
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port in this worker's range")


def unavailable(reason: str):
    """A real server that cannot start: a failure under CI (nothing may be skipped there
    unnoticed), a skip on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real-server tests must run)")
    pytest.skip(reason)


def pg_bin() -> Path | None:
    """PostgreSQL's programs: the ones the project installs (the pgserver wheel, a dev
    dependency), else initdb/pg_ctl on PATH."""
    with contextlib.suppress(ImportError):
        import pgserver

        found = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (found / "initdb").is_file():
            return found
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (where a system
    package made one) or `nobody`."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("GBMSEG_PG_USER", "postgres")  # e.g. nobody, on a bare machine
    try:
        return pwd.getpwnam(wanted).pw_name
    except KeyError:
        return "nobody"


def _as_postgres(cmd: list[str], user: str | None) -> list[str]:
    if user is None:
        return cmd
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).is_file()), "runuser"
    )
    return [runuser, "-u", user, "--", *cmd]


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def reachable_bin(bindir: Path, user: str | None) -> Path:
    """``bindir``, or, when ``user`` cannot reach it (a checkout inside a home folder of mode
    700 or 750), a copy of its installation in the temp folder that ``user`` can read,
    made once and shared by the test workers."""
    if user is None:
        return bindir
    probe = subprocess.run(_as_postgres(["test", "-x", str(bindir / "initdb")], user), check=False)
    if probe.returncode == 0:
        return bindir
    # the wheel's layout: <site>/pgserver/pginstall/bin finds its libraries through the
    # relative rpath $ORIGIN/../../../pgserver.libs, so both are copied, side by side
    install = bindir.parent
    site = install.parent.parent
    key = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    dest = Path(tempfile.gettempdir()) / f"gbmseg-pginstall-{key}"
    found = dest / install.parent.name / install.name / "bin"
    if not (found / "initdb").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=f"{dest.name}.", dir=dest.parent))
        skip = shutil.ignore_patterns("include")
        shutil.copytree(
            install, tmp / install.parent.name / install.name, symlinks=True, ignore=skip
        )
        for libs in site.glob(f"{install.parent.name}.libs"):
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for q in [tmp, *tmp.rglob("*")]:
            if q.is_dir():
                q.chmod(0o755)
        with contextlib.suppress(OSError):  # another worker may have put it there first
            os.replace(tmp, dest)
        shutil.rmtree(tmp, ignore_errors=True)
    probe = subprocess.run(_as_postgres(["test", "-x", str(found / "initdb")], user), check=False)
    if probe.returncode != 0:
        raise RuntimeError(f"{user} can reach neither {bindir} nor its copy {found}")
    return found


@contextlib.contextmanager
def postgres(bindir: Path | None = None) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1; yields a SQLAlchemy URI of database mlflow.
    As root it runs as an unprivileged user, from a copy of the programs where that user
    cannot reach the checkout's."""
    bindir = bindir or pg_bin()
    if bindir is None:
        unavailable("no PostgreSQL programs: `make venv` installs them (pgserver)")
    user = _pg_user()
    bindir = reachable_bin(bindir, user)
    root = Path(tempfile.mkdtemp(prefix="gbmseg-pg-"))
    root.chmod(0o755)
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", free_port()
    env = {**os.environ, "LC_ALL": "C"}
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run(
        _as_postgres([*initdb, "-E", "UTF8"], user),
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=100"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log")]
    subprocess.run(
        _as_postgres([*start, "-w", "start"], user),
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE mlflow")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(stop, user), capture_output=True, env=env, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def s3_server(log_dir: Path) -> Iterator[str]:
    """An S3-compatible server (moto's server mode) on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with _serving(cmd, log_dir / f"moto-{port}.log", S3_CREDENTIALS, port, "/", 60) as url:
        yield url


@contextlib.contextmanager
def _serving(
    cmd: list[str], log_path: Path, env: dict[str, str], port: int, probe: str, timeout: float
) -> Iterator[str]:
    """Start ``cmd`` in its own process group, wait until ``probe`` answers, stop it after."""
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **env},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}{probe}", timeout=timeout, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


@contextlib.contextmanager
def mlflow_server(
    backend: str,
    artifacts: Path | str,
    env: dict[str, str] | None = None,
    log_dir=None,
    port: int | None = None,
    workers: int = 1,
    extra: tuple[str, ...] = (),
) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with the given backend store and artifact destination
    (a folder or s3://...), plus ``extra`` arguments; yields its URL."""
    port = port or free_port()
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(artifacts),
        "--workers",
        str(workers),
        *extra,
    ]
    log_dir = Path(log_dir or Path(artifacts).parent)
    with _serving(
        cmd, log_dir / f"mlflow-server-{port}.log", env or {}, port, "/health", 120
    ) as url:
        yield url
