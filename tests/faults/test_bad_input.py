"""Bad input files (truncated image, JPEG mask, size mismatch, empty folders) get one clear
line naming the file and the problem, exit code 2, and the previous good output of the
stage is left byte-for-byte as it was."""

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbmseg.cli.app import main
from gbmseg.steps import synth
from tests.conftest import tiny

pytestmark = pytest.mark.faults


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for q in sorted(root.rglob("*")):
        if q.is_file():
            h.update(q.relative_to(root).as_posix().encode() + q.read_bytes())
    return h.hexdigest()


def _truncate(raw: Path) -> str:
    path = raw / "images" / "tar_001.png"
    path.write_bytes(path.read_bytes()[:200])
    return "images/tar_001.png: cannot decode image"


def _jpeg_mask(raw: Path) -> str:
    png = raw / "masks" / "tar_002.png"
    buf = io.BytesIO()
    Image.open(png).convert("L").save(buf, format="JPEG", quality=75)
    png.unlink()
    (raw / "masks" / "tar_002.jpg").write_bytes(buf.getvalue())
    return "masks/tar_002.jpg"


def _size_mismatch(raw: Path) -> str:
    path = raw / "masks" / "tar_003.png"
    Image.fromarray(np.zeros((40, 48), np.uint8) + 255).save(path)
    return "tar_003.png"


def _empty(raw: Path) -> str:
    shutil.rmtree(raw / "test")
    for sub in ("images", "masks"):
        shutil.rmtree(raw / sub)
        (raw / sub).mkdir()
    return "raw/target: images/ is empty"


@pytest.mark.parametrize(
    "fault", [_truncate, _jpeg_mask, _size_mismatch, _empty], ids=lambda f: f.__name__[1:]
)
def test_bad_input_is_named_and_nothing_is_lost(fault, tmp_path, caplog):
    p = tiny(tmp_path)
    synth.run(p.synth, None, p.target.raw)
    args = ["validate", "--no-track", *[a for o in _sets(p) for a in ("-S", o)]]
    assert main(args) == 0  # a good run first: its output must survive the bad one
    before = _tree_hash(Path(p.validate_.out))
    expected = fault(Path(p.target.raw))
    caplog.clear()
    assert main(args) == 2
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert expected in errors, errors
    assert _tree_hash(Path(p.validate_.out)) == before
    assert not [q for q in Path(p.validate_.out).parent.iterdir() if q.name.endswith(".tmp")]


def _sets(p) -> list[str]:
    from tests.conftest import TINY

    return [*TINY, f"sets.target.raw={p.target.raw}", f"validate.out={p.validate_.out}"]
