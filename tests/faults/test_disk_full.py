"""A disk that fills up: the child process gets a file-size limit (RLIMIT_FSIZE) and ignores
SIGXFSZ, so its writes past the limit fail with EFBIG, as on a full disk.  During pack,
checkpointing and publishing: one clear error, exit 1, the previous outputs byte-for-byte
intact, and no half-written file or folder left behind."""

import hashlib
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY, path_overrides, prepared, tiny

pytestmark = pytest.mark.faults


def _limit(nbytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return apply


def _tree(root: Path) -> str:
    h = hashlib.sha256()
    for q in sorted(root.rglob("*")):
        if q.is_file():
            h.update(q.relative_to(root).as_posix().encode() + q.read_bytes())
    return h.hexdigest()


def _gbmseg(p, *args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    sets = [*TINY, *path_overrides(p)]
    cmd = [sys.executable, "-m", "gbmseg", *args, "--no-track"]
    cmd += [a for s in sets for a in ("-S", s)]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit(limit) if limit else None,
    )


def _leftovers(folder: Path) -> list[str]:
    return [q.name for q in folder.rglob("*") if q.name.endswith(".tmp")]


def _failed_clearly(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 1, res.stderr[-2000:]
    assert "File too large" in res.stderr and "nothing was published" in res.stderr
    assert "Traceback" not in res.stderr


def test_disk_full_during_pack(tmp_path):
    p = prepared(tiny(tmp_path))
    packed = p.paths("target").packed
    before = _tree(packed)
    _failed_clearly(_gbmseg(p, "pack", "target", limit=20_000))  # the arrays do not fit
    assert _tree(packed) == before
    assert _leftovers(packed.parent) == []


def test_disk_full_during_checkpointing(tmp_path):
    p = prepared(tiny(tmp_path))
    assert _gbmseg(p, "train", "target").returncode == 0
    model = p.paths("target").model
    before = _tree(model)
    ckpt = Path(p.train_params("target").checkpoints)
    (ckpt / "last.pt").unlink()
    # the weights (~50 kB) fit, last.pt with the optimiser's state (~150 kB) does not
    _failed_clearly(_gbmseg(p, "train", "target", limit=100_000))
    assert _tree(model) == before
    assert _leftovers(ckpt) == [] and _leftovers(model.parent) == []


def test_disk_full_while_publishing(tmp_path):
    p = prepared(tiny(tmp_path))
    assert _gbmseg(p, "train", "target").returncode == 0
    model = p.paths("target").model
    before = _tree(model)
    # resuming a finished run goes straight to publishing: model.pt (~50 kB) does not fit
    _failed_clearly(_gbmseg(p, "train", "target", "--resume", limit=20_000))
    assert _tree(model) == before
    assert _leftovers(model.parent) == []
    assert [q.name for q in model.parent.iterdir() if q.name.startswith(".")] == []
