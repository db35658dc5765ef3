"""The subcommands of ``gbmseg``: each loads nothing itself, calls ``steps.<step>.run``.

The parser and entry point live in ``cli_parser``; ``main`` is re-exported here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from gbmseg.config import ConfigError, Params

log = logging.getLogger("gbmseg")
EXIT_BAD_INPUT, EXIT_FAILED = 2, 1
COMMANDS: dict[str, Callable[[argparse.Namespace, Params], dict]] = {}
HELP: dict[str, str] = {}  # one line per subcommand, in pipeline order
ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {}


def command(name: str, summary: str, arguments=None):
    """Register a subcommand, its one-line help and (optionally) a function adding its own
    arguments, in one place."""

    def deco(fn):
        COMMANDS[name] = fn
        HELP[name] = summary
        if arguments is not None:
            ARGUMENTS[name] = arguments
        return fn

    return deco


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
def tracked(args: argparse.Namespace, params: Params, step: str):
    if args.no_track or int(os.environ.get("RANK", "0")) > 0:  # under torchrun only rank 0 logs
        yield None
        return
    from gbmseg import tracking

    with tracking.stage_run(params.tracking, step, pipeline_group(params)) as run:
        run.tags({"params_digest": params.digest(), "data_hash": data_hash()})
        yield run


@command(
    "synth",
    "generate the deterministic synthetic demo data set (images/, masks/, meta.json)",
)
def _synth(args, params: Params) -> dict:
    from gbmseg.steps import synth

    meta = synth.run(params.synth, args.out or params.data.raw, params.data.positive)
    return {
        "images": len(meta["images"]),
        "out": args.out or params.data.raw,
        "next": "gbmseg validate (or `dvc repro`)",
    }


@command(
    "validate",
    "check images and masks with a Great Expectations suite, then normalise them",
)
def _validate(args, params: Params) -> dict:
    from gbmseg.steps import validate

    p = params.validate_
    out = args.out or p.out
    with tracked(args, params, "validate") as run:
        res = validate.run(p, args.dir or params.data.raw, out, params.data.positive)
        if run:
            run.metrics(res)
            run.artifact(Path(out) / "table.csv", "validate")
    return {**res, "out": out, "next": "gbmseg augment"}


@command(
    "augment",
    "write N augmented copies per image with the recipe's seven transforms",
)
def _augment(args, params: Params) -> dict:
    from gbmseg.steps import augment

    with tracked(args, params, "augment") as run:
        res = augment.run(params.augment, params.validate_.out, params.augment.out)
        if run:
            run.metrics(res)
            run.artifact(Path(params.augment.out) / "preview.png", "augment")
    return {**res, "next": "gbmseg pack"}


@command(
    "pack",
    "cut images into fixed-size tiles, split train/val/test by source image",
)
def _pack(args, params: Params) -> dict:
    from gbmseg.steps import pack

    with tracked(args, params, "pack") as run:
        res = pack.run(params.pack, params.validate_.out, params.augment.out, params.pack.out)
        counts = {f"{s}_tiles": v["tiles"] for s, v in res["splits"].items()}
        if run:
            run.metrics(counts)
            run.artifact(Path(params.pack.out) / "manifest.json", "pack")
    return {**counts, "next": "gbmseg train"}


@command(
    "train",
    "train a U-Net on the packed tiles (bf16 autocast where the hardware has it)",
)
def _train(args, params: Params) -> dict:
    from gbmseg.steps import train

    with tracked(args, params, "train") as run:
        res = train.run(
            params.train, params.pack.out, run, resume=args.resume, augment=params.augment
        )
    return {**res, "next": "gbmseg evaluate"}


@command(
    "finetune",
    "fine-tune a pretrained U-Net on a small target set (head/decoder/shallow/full)",
)
def _finetune(args, params: Params) -> dict:
    from gbmseg.steps import finetune

    p = params.finetune
    if args.pretrained:
        p = p.model_copy(update={"pretrained": args.pretrained})
    if p.pretrained.startswith(("models:/", "runs:/")):
        from gbmseg import tracking

        tracking.setup(params.tracking)
    with tracked(args, params, "finetune") as run:
        res = finetune.run(
            p,
            params.train,
            args.packed or params.pack.out,
            run,
            resume=args.resume,
            augment=params.augment,
        )
    return {**res, "next": f"gbmseg evaluate --model {p.out}"}


@command(
    "evaluate",
    "score the trained model on held-out test images; per-image table + overlays",
)
def _evaluate(args, params: Params) -> dict:
    from gbmseg.steps import evaluate

    with tracked(args, params, "evaluate") as run:
        res = evaluate.run(
            params.evaluate,
            args.model or params.train.out,
            params.validate_.out,
            params.pack.out,
            run,
        )
    return {**res, "next": "gbmseg register"}


@command(
    "register",
    "log and register the model as @challenger; promote to @champion only if it is better",
)
def _register(args, params: Params) -> dict:
    from gbmseg import tracking
    from gbmseg.data.atomic import git_sha
    from gbmseg.steps import register

    tags = {"git_sha": git_sha(), "params_digest": params.digest(), "data_hash": data_hash()}
    with tracked(args, params, "register") as run:
        if run is None:
            raise ConfigError("register needs MLflow tracking; drop --no-track")
        res = register.run(
            params.register_,
            params.tracking,
            params.evaluate,
            params.train.out,
            params.validate_.out,
            run,
            tags,
        )
    ui = tracking.resolve_uri(params.tracking)
    return {**res, "next": f"browse it: mlflow ui --backend-store-uri {ui}"}


def main(argv: list[str] | None = None) -> int:
    from gbmseg.cli_parser import main as _main

    return _main(argv)


@command(
    "predict",
    "segment images of any size (PNG/TIFF, 8/16-bit) with a registered or local model",
)
def _predict(args, params: Params) -> dict:
    from gbmseg import tracking
    from gbmseg.steps import predict

    p = params.predict.model_copy(
        update={
            k: v
            for k, v in {
                "tta": args.tta or None,
                "probabilities": args.probabilities or None,
                "tile": args.tile,
                "out": args.out,
            }.items()
            if v is not None
        }
    )
    if args.model.startswith(("models:/", "runs:/")):
        tracking.setup(params.tracking)
    res = predict.run(p, args.model, args.images, p.out, params.data.positive)
    return {
        "images": len(res),
        "out": p.out,
        "files": res,
        "next": f"gbmseg measure {p.out} --pixel-size NM",
    }


@command(
    "measure",
    "local GBM thickness (nm) along the membrane: table, histogram, coloured overlay",
)
def _measure(args, params: Params) -> dict:
    from gbmseg.steps import measure

    out = args.out or params.measure.out
    table = measure.run(params.measure, args.masks, out, params.data.positive, args.pixel_size)
    return {
        "masks": len(table),
        "out": out,
        "median_nm": dict(zip(table["image"], table["median_nm"], strict=True)),
        "next": f"open {out}/histogram.png and {out}/thickness.csv",
    }
