"""The pipeline's stages as plain functions of the parameters: which step runs on which
paths.  The CLI (``dvc repro`` runs it) and the Kubeflow components both call these, so
the mapping from params.yaml to a step's inputs and outputs exists once.

Each stage takes the parsed ``Params``, the set it works on (for per-set stages), the
tracker's run log (a ``RunLog``, or None) and returns the step's result, a JSON-able dict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from gbmseg.config import ConfigError, Params, is_registry_ref
from gbmseg.runlog import RunLog

PER_SET = ("validate", "augment", "pack", "train", "selfsup")


def check_sets(params: Params) -> None:
    """Refuse a set that nothing would use (it would be validated and trained for nothing),
    and a ``train.sets`` that does not train exactly the pretraining set and the baseline.
    Checked on the parameters as the user wrote them: by `gbmseg train` and by the Kubeflow
    task before it puts its own paths in."""
    unused = params.unused_sets()
    if unused:
        raise ConfigError(
            f"sets {unused} are neither finetune.target ({params.finetune.target}) nor the set "
            f"finetune.pretrained ({params.finetune.pretrained}) was trained on; remove them "
            "from `sets`, or point finetune.pretrained at models/train/<set>"
        )
    check_trained(params)


def check_trained(params: Params) -> None:
    """``train.sets`` holds finetune.pretrained's set and evaluate.baseline's (when they are
    trained here, under train.out), and no set that nothing uses: the target only while a
    baseline is scored (a baseline model from elsewhere is fine)."""
    trained, e = params.train.sets, params.evaluate
    unknown = sorted(set(trained) - set(params.sets))
    if unknown or len(set(trained)) < len(trained):
        raise ConfigError(
            f"train.sets {trained}: each must be a set in params.yaml `sets` (known: "
            f"{', '.join(sorted(params.sets))}), once"
        )
    pre, base = params.pretrained_set(), params.baseline_set()
    if pre in params.sets and pre not in trained:
        raise ConfigError(
            f"finetune.pretrained is {params.finetune.pretrained}, but train.sets {trained} "
            f"does not train {pre!r}: add it to train.sets, or start from a registry model"
        )
    if base and base not in trained:
        raise ConfigError(
            f"evaluate.baseline {e.baseline!r} is not {params.train.out}/<a set in train.sets "
            f"{trained}>: add its set to train.sets, or set evaluate.baseline: '' to score "
            "no baseline (and train none)"
        )
    target = params.finetune.target if e.baseline else None  # trained as the baseline
    idle = [s for s in trained if s not in (pre, base, target)]
    if idle:
        off = " (evaluate.baseline: '' switched the baseline off)" if not e.baseline else ""
        raise ConfigError(
            f"train.sets {idle} would be trained for nothing: neither finetune.pretrained's set "
            f"nor evaluate.baseline's{off}; drop them from train.sets"
        )


def pipeline_group(params: Params) -> str:
    """Key grouping one pipeline run's stage runs in MLflow: env, else config + data hash."""
    if env := os.environ.get("GBMSEG_PIPELINE_RUN"):
        return env
    data = Path("data.dvc").read_bytes() if Path("data.dvc").is_file() else b""
    return hashlib.sha256(params.digest().encode() + data).hexdigest()[:16]


def data_hash() -> str:
    import yaml

    path = Path("data.dvc")
    if not path.is_file():
        return "untracked"
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs", [{}])
    return str(outs[0].get("md5", "unknown"))


@contextlib.contextmanager
def tracked(params: Params, step: str, enabled: bool = True) -> Iterator[RunLog | None]:
    """The step's MLflow run (nested under the pipeline run), or None when tracking is off
    or on a non-zero torchrun rank."""
    if not enabled or int(os.environ.get("RANK", "0")) > 0:
        yield None
        return
    from gbmseg import tracking

    with tracking.stage_run(params.tracking, step, pipeline_group(params)) as run:
        run.tags({"params_digest": params.digest(), "data_hash": data_hash()})
        yield run


def setup_registry(params: Params, ref: str) -> None:
    """Point MLflow at the configured store before a registry reference is read."""
    if is_registry_ref(ref):
        from gbmseg import tracking

        tracking.setup(params.tracking)


def synth(params: Params, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.synth

    src = params.sets.get("source")
    meta = gbmseg.steps.synth.run(
        params.synth,
        src.raw if src else None,
        params.target.raw,
        src.positive if src and isinstance(src.positive, str) else "black",
        target_positive=params.target_positive,
    )
    return {name: len(m["images"]) for name, m in meta.items()}


def validate(params: Params, name: str, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.validate

    s, out = params.labelled(name), params.paths(name).validated
    res = gbmseg.steps.validate.run(
        params.validate_,
        s.raw,
        out,
        s.positive,
        run_log=run_log,
        pixel_size_nm=s.pixel_size_nm,
        set_key=f"sets.{name}.pixel_size_nm",
    )
    return res | {"out": str(out)}


def augment(params: Params, name: str, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.augment

    sp = params.paths(name)
    return gbmseg.steps.augment.run(params.augment, sp.validated, sp.augmented, run_log)


def pack(params: Params, name: str, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.pack

    sp = params.paths(name)
    res = gbmseg.steps.pack.run(
        params.pack, sp.validated, sp.augmented, sp.packed,
        split_file=sp.split_file, run_log=run_log,
    )  # fmt: skip
    return {f"{s}_images": len(v["sources"]) for s, v in res["splits"].items()} | {
        f"{s}_tiles": v["tiles"] for s, v in res["splits"].items()
    }


def train(params: Params, name: str, run_log: RunLog | None = None, resume: bool = False) -> dict:
    import gbmseg.steps.train

    params.labelled(name)
    if name not in params.train.sets:
        raise ConfigError(
            f"{name!r} is not in train.sets {params.train.sets} (the sets trained from scratch: "
            f"dvc.yaml trains each of them); add it there to train it"
        )
    train_p = params.train_params(name)
    packed = params.paths(name).packed
    return gbmseg.steps.train.run(train_p, packed, run_log, resume, augment=params.augment)


def target_test_images(params: Params) -> set[str]:
    """Pixel hashes of the target's test images (from its pack manifest, once packed)."""
    path = params.paths(params.finetune.target).packed / "manifest.json"
    if not path.is_file():
        return set()
    return set(json.loads(path.read_text())["splits"]["test"].get("pixels_sha256", []))


def selfsup(params: Params, name: str, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.selfsup

    out, metrics, history = params.selfsup_paths(name)
    t = params.train
    return gbmseg.steps.selfsup.run(
        params.selfsup,
        t.model,
        params.unlabelled(name),
        out,
        metrics=metrics,
        history=history,
        exclude=target_test_images(params),
        device=t.device,
        amp=t.amp,
        run_log=run_log,
    ) | {"out": str(out)}


def resolve_unchanged(params: Params) -> dict | None:
    """The resolved model when finetune.pretrained still names it (checked without torch,
    and for a registry alias with one query), so a no-op `dvc repro` stays cheap."""
    import gbmseg.steps.resolve

    setup_registry(params, params.finetune.pretrained)
    found = gbmseg.steps.resolve.unchanged(params.resolve, params.finetune.pretrained)
    return None if found is None else found | {"unchanged": True}


def resolve(params: Params, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.resolve

    setup_registry(params, params.finetune.pretrained)
    return gbmseg.steps.resolve.run(params.resolve, params.finetune.pretrained, run_log)


def finetune(params: Params, run_log: RunLog | None = None, resume: bool = False) -> dict:
    import gbmseg.steps.finetune

    folder = Path(params.resolve.out)
    info = folder / "pretrained.json"
    name = json.loads(info.read_text())["reference"] if info.is_file() else str(folder)
    packed = params.paths(params.finetune.target).packed
    train_p = params.finetune_train_params()
    return gbmseg.steps.finetune.run(
        params.finetune,
        train_p,
        folder,
        packed,
        run_log=run_log,
        resume=resume,
        augment=params.augment,
        pretrained_name=name,
    )


def evaluate(params: Params, run_log: RunLog | None = None) -> dict:
    import gbmseg.steps.evaluate

    e, sp = params.evaluate, params.paths(params.finetune.target)
    baseline = e.baseline or None
    scored = (Path(e.model) / "model.pt").is_file()  # if not, the step names it first
    if baseline and scored and not (Path(baseline) / "model.pt").is_file():
        raise ConfigError(
            f"evaluate.baseline {baseline}: no model there; train it first (`gbmseg train "
            f"{Path(baseline).name}`, a set in train.sets), or set evaluate.baseline: '' to "
            "score no baseline"
        )
    return gbmseg.steps.evaluate.run(
        e,
        e.model,
        sp.validated,
        sp.packed,
        baseline_dir=baseline,
        run_log=run_log,
        thickness=params.measure,
    )


def register(params: Params, run_log: RunLog) -> dict:
    import gbmseg.steps.register
    from gbmseg import tracking
    from gbmseg.data.atomic import git_sha

    tags = {"git_sha": git_sha(), "params_digest": params.digest(), "data_hash": data_hash()}
    validated = params.paths(params.finetune.target).validated
    res = gbmseg.steps.register.run(
        params.register_,
        params.tracking,
        params.evaluate,
        validated,
        run_log=run_log,
        model_dir=params.evaluate.model,
        tags=tags,
        thickness=params.measure,
    )
    return res | {"tracking_uri": tracking.resolve_uri(params.tracking)}


def known_images(params: Params) -> tuple[set[str], set[str]]:
    """(pixel hashes, file stems) of every labelled image (each set's folders) and every
    packed split's images: what ``suggest`` never proposes again, names it never reuses."""
    from gbmseg.data.io import list_images, read_image
    from gbmseg.data.table import pixels_sha256

    hashes: set[str] = set()
    stems: set[str] = set()
    for name, labelled in params.sets.items():
        manifest = params.paths(name).packed / "manifest.json"
        if manifest.is_file():
            for split in json.loads(manifest.read_text())["splits"].values():
                hashes.update(split.get("pixels_sha256", []))
        for folder in Path(labelled.raw).rglob("images"):
            files = list_images(folder) if folder.is_dir() else []
            hashes.update(pixels_sha256(read_image(f)) for f in files)
            stems.update(f.stem for f in files)
    return hashes, stems


def load_model_ref(params: Params, ref: str):
    from gbmseg.engine.checkpoint import load_model

    if not is_registry_ref(ref):
        return load_model(ref)
    setup_registry(params, ref)
    from gbmseg.tracking import load_model_ref as from_registry

    return from_registry(ref)


def suggest(params: Params, run_log: RunLog | None = None, *, model: str | None = None) -> dict:
    """Rank ``suggest.images`` with ``model`` (default: evaluate.model, the model the run
    ends with) and write the top ones as drafts; ``rows``: every ranked image."""
    import gbmseg.steps.suggest
    from gbmseg.data.io import collect_images

    images = collect_images([params.suggest.images], "unlabelled image")  # before the model
    hashes, stems = known_images(params)
    rows = gbmseg.steps.suggest.run(
        params.suggest, load_model_ref(params, model or params.evaluate.model), images,
        params.suggest.out, exclude=hashes, taken=stems, label=params.validate_.labels[0],
    )  # fmt: skip
    top = rows[: params.suggest.top]
    if run_log is not None:
        run_log.metrics({"suggest_ranked": len(rows), "suggest_top_score": top[0]["score"]})
    return {"ranked": len(rows), "drafts": [r["draft"] for r in top], "out": params.suggest.out,
            "top_score": top[0]["score"], "rows": rows}  # fmt: skip


def export(params: Params, model_ref: str) -> dict:
    import gbmseg.steps.export
    from gbmseg.data.io import list_images

    setup_registry(params, model_ref)
    sample = params.export.sample
    if not sample:
        folder = Path(params.labelled(params.finetune.target).raw) / "images"
        found = list_images(folder) if folder.is_dir() else []
        sample = str(found[0]) if found else f"{folder}/<none>"
    return gbmseg.steps.export.run(
        params.export, model_ref, params.export.out, sample=sample,
        metrics=params.evaluate.metrics, label=params.validate_.labels[0],
    )  # fmt: skip
