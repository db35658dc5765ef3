"""resolve: turn ``finetune.pretrained`` into a local model folder that DVC can track.

The reference is a model folder (e.g. ``models/train/source``, pretrained in this pipeline)
or a registry URI (``models:/gbmseg-unet@champion``).  The output folder holds ``model.pt``,
``trained_on.json`` and ``pretrained.json`` (the reference, registry name and version, and
the weights' sha256).  Its bytes change only when the resolved model changes, so a stage
that runs on every ``dvc repro`` re-runs fine-tuning only after a new champion.

``unchanged`` answers "nothing to do" cheaply, before anything heavy is imported: a folder
whose model.pt and trained_on.json hash as recorded, or a registry alias that still names
the version recorded (one registry query, no download).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from gbmseg.config import ResolveParams, is_registry_ref
from gbmseg.data.atomic import atomic_dir, sha256_file, write_json
from gbmseg.data.io import DataError
from gbmseg.runlog import RunLog

log = logging.getLogger(__name__)
TRAINED_ON = "trained_on.json"  # gbmseg.engine.lifecycle.TRAINED_ON (no torch import here)


def _local(ref: str) -> Path:
    src = Path(ref)
    return src.parent if src.name == "model.pt" else src


def _hashes(folder: Path) -> dict[str, str]:
    trained = folder / TRAINED_ON
    out = {"sha256": sha256_file(folder / "model.pt")}
    return out | ({"trained_on_sha256": sha256_file(trained)} if trained.is_file() else {})


def unchanged(p: ResolveParams, ref: str) -> dict | None:
    """What ``p.out`` already holds when ``ref`` still resolves to it, else None."""
    record = Path(p.out) / "pretrained.json"
    if not record.is_file() or not (Path(p.out) / "model.pt").is_file():
        return None
    info = json.loads(record.read_text())
    if info.get("reference") != ref or info.get("sha256") != sha256_file(Path(p.out) / "model.pt"):
        return None  # another reference, or the copy kept here was altered
    if is_registry_ref(ref):
        from gbmseg import tracking

        found = tracking.version_of(ref)
        same = found is not None and (info.get("name"), info.get("version")) == tuple(found)
        return info if same else None
    src = _local(ref)
    if not (src / "model.pt").is_file():
        return None
    fresh = _hashes(src)
    return info if all(info.get(k) == v for k, v in fresh.items()) else None


def _copy(src: Path, dst: Path) -> None:
    from gbmseg.engine.checkpoint import load_model

    load_model(src)  # refuse weights that do not load before anything is written
    shutil.copyfile(src / "model.pt", dst / "model.pt")
    if (src / TRAINED_ON).is_file():
        shutil.copyfile(src / TRAINED_ON, dst / TRAINED_ON)
    else:
        write_json(dst / TRAINED_ON, {"images": 0, "pixels_sha256": []})


def run(p: ResolveParams, ref: str, run_log: RunLog | None = None) -> dict:
    """Resolve ``ref`` into ``p.out``; return what it resolved to."""
    info: dict = {"reference": ref}
    with atomic_dir(p.out) as tmp:
        if is_registry_ref(ref):
            from gbmseg import tracking

            found = tracking.version_of(ref)
            if ref.startswith("models:/") and found is None:
                raise DataError(
                    f"{ref}: no such registered model version; register one first "
                    "(`dvc repro` with a source set), or set finetune.pretrained to a folder"
                )
            with tracking.downloaded(ref) as folder:
                _copy(folder, tmp)
            if found:
                info |= {"name": found[0], "version": found[1]}
        else:
            src = _local(ref)
            if not (src / "model.pt").is_file():
                raise DataError(
                    f"{src}: no model.pt; train it first (`gbmseg train SET`), or set "
                    "finetune.pretrained to a model folder or models:/NAME@ALIAS"
                )
            _copy(src, tmp)
            info |= {k: v for k, v in _hashes(src).items() if k == "trained_on_sha256"}
        info["sha256"] = sha256_file(tmp / "model.pt")
        info["images_seen"] = json.loads((tmp / TRAINED_ON).read_text())["images"]
        write_json(tmp / "pretrained.json", info)
    log.info("resolve: %s -> %s (sha256 %s)", ref, p.out, info["sha256"][:12])
    if run_log:
        run_log.tags({f"pretrained.{k}": v for k, v in info.items()})
    return info
