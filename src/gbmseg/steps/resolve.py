"""resolve: turn ``finetune.pretrained`` into a local model folder that DVC can track.

The reference is a model folder (e.g. ``models/train/source``, pretrained in this pipeline)
or a registry URI (``models:/gbmseg-unet@champion``).  The output folder holds ``model.pt``,
``trained_on.json`` and ``pretrained.json`` (the reference, registry name and version, and
the weights' sha256).  Its bytes change only when the resolved model changes, so a stage
that runs on every ``dvc repro`` re-runs fine-tuning only after a new champion.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from gbmseg.config import ResolveParams, is_registry_ref
from gbmseg.data.atomic import atomic_dir, sha256_file, write_json
from gbmseg.data.io import DataError
from gbmseg.engine.checkpoint import load_model
from gbmseg.engine.lifecycle import TRAINED_ON
from gbmseg.runlog import RunLog

log = logging.getLogger(__name__)


def _copy(src: Path, dst: Path) -> None:
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
            src = Path(ref)
            src = src.parent if src.name == "model.pt" else src
            if not (src / "model.pt").is_file():
                raise DataError(
                    f"{src}: no model.pt; train it first (`gbmseg train SET`), or set "
                    "finetune.pretrained to a model folder or models:/NAME@ALIAS"
                )
            _copy(src, tmp)
        info["sha256"] = sha256_file(tmp / "model.pt")
        info["images_seen"] = json.loads((tmp / TRAINED_ON).read_text())["images"]
        write_json(tmp / "pretrained.json", info)
    log.info("resolve: %s -> %s (sha256 %s)", ref, p.out, info["sha256"][:12])
    if run_log:
        run_log.tags({f"pretrained.{k}": v for k, v in info.items()})
    return info
