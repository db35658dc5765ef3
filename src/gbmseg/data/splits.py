"""The split file: each image's train/val/test split, decided when the image is first seen.

``splits/<set>.csv`` (columns ``image,split``) is committed with the code.  Rows are only
ever added: adding images never moves an earlier test image into training, so a model's
test images stay unseen by the next model.  The lab may edit a row to pin an image.

A new image's split follows from a hash of its own name (``val_fraction``,
``test_fraction``); images from the set's ``test/`` folder are always test.  Two fix-ups,
applied to new images only: a set of two or more images without a test folder gets at
least one test image, and every set keeps at least one training image.  A set without
validation images trains on a fixed schedule (no early stopping).
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from gbmseg.data.atomic import write_text
from gbmseg.data.io import DataError

SPLITS = ("train", "val", "test")


def position(name: str) -> float:
    """A number in [0, 1) that depends on the image name alone."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) / 16**12


def read(path: str | Path) -> dict[str, str]:
    """image -> split from a split file (empty when there is none yet)."""
    path = Path(path)
    if not path.is_file():
        return {}
    rows: dict[str, str] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"image", "split"} <= set(reader.fieldnames):
            raise DataError(f"{path}: a split file needs the columns image,split")
        for line, row in enumerate(reader, start=2):
            name, split = (row["image"] or "").strip(), (row["split"] or "").strip()
            if split not in SPLITS:
                raise DataError(
                    f"{path}:{line}: split {split!r} for {name!r}; use one of {', '.join(SPLITS)}"
                )
            if name in rows:
                raise DataError(f"{path}:{line}: {name!r} is listed twice; keep one row")
            rows[name] = split
    return rows


def write(path: str | Path, table: dict[str, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "split"])
    for name in sorted(table):
        w.writerow([name, table[name]])
    write_text(path, buf.getvalue())


def _by_hash(name: str, val: float, test: float) -> str:
    u = position(name)
    return "test" if u < test else "val" if u < test + val else "train"


def assign(
    known: dict[str, str],
    names: list[str],
    test_only: set[str],
    val_fraction: float,
    test_fraction: float,
) -> dict[str, str]:
    """The split table after seeing ``names``: ``known`` rows unchanged, new rows added."""
    for name in sorted(test_only & set(known)):
        if known[name] != "test":
            raise DataError(
                f"{name}: comes from the set's test/ folder, which is only ever tested on, "
                f"but the split file says {known[name]!r}; move the image out of test/ instead"
            )
    test = 0.0 if test_only else test_fraction
    new = [n for n in sorted(names) if n not in known]
    fresh = {n: "test" if n in test_only else _by_hash(n, val_fraction, test) for n in new}
    table = {**known, **fresh}
    current = {n: table[n] for n in names}
    movable = sorted((n for n in fresh if n not in test_only), key=position)
    if not test_only and len(current) >= 2 and "test" not in current.values() and movable:
        table[movable[0]] = current[movable[0]] = "test"
        movable = movable[1:]
    if "train" not in current.values() and movable:
        table[movable[-1]] = "train"
    return table


def splits_of(table: dict[str, str], names: list[str]) -> dict[str, list[str]]:
    """The set's current images grouped by split (rows of images no longer present ignored)."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name in sorted(names):
        out[table[name]].append(name)
    return out
