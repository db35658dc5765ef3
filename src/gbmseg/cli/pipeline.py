"""The pipeline's subcommands (what `dvc repro` runs): each a call into ``gbmseg.stages``."""

from __future__ import annotations

import argparse

from gbmseg import stages
from gbmseg.cli.base import command, item_argument, param
from gbmseg.config import ConfigError, Params


def _per_set(sp: argparse.ArgumentParser) -> None:
    item_argument(sp)


def _validate_args(sp: argparse.ArgumentParser) -> None:
    item_argument(sp)
    param(sp, "--raw", "sets.{item}.raw", "folder with images/ and masks/ to check", metavar="DIR")
    param(sp, "--out", "validate.out", "base folder of the normalised sets", metavar="DIR")


def _resume(sp: argparse.ArgumentParser, what: str) -> None:
    sp.add_argument(
        "--resume", action="store_true", help=f"continue {what} from its last.pt if there is one"
    )


@command("synth", "generate the demo's synthetic source and target sets (byte-deterministic)")
def _synth(args, params: Params) -> dict:
    return stages.synth(params) | {"next": "dvc repro (or gbmseg validate source|target)"}


@command(
    "validate",
    "check a labelled set with a Great Expectations suite, then normalise it",
    _validate_args,
)
def _validate(args, params: Params) -> dict:
    with stages.tracked(params, "validate", not args.no_track) as run:
        res = stages.validate(params, args.item, run)
    return res | {"next": f"gbmseg augment {args.item}"}


@command(
    "augment", "write N augmented copies per training image (the recipe's 7 transforms)", _per_set
)
def _augment(args, params: Params) -> dict:
    with stages.tracked(params, "augment", not args.no_track) as run:
        res = stages.augment(params, args.item, run)
    return res | {"next": f"gbmseg pack {args.item}"}


@command("pack", "give new images a split (split file), cut tiles into .npy arrays", _per_set)
def _pack(args, params: Params) -> dict:
    with stages.tracked(params, "pack", not args.no_track) as run:
        res = stages.pack(params, args.item, run)
    return res | {"next": f"gbmseg train {args.item}"}


def _train_args(sp: argparse.ArgumentParser) -> None:
    item_argument(sp, default=None)
    _resume(sp, "training")


@command(
    "train",
    "train a U-Net from scratch on a set: pretraining (source) or the baseline (target)",
    _train_args,
)
def _train(args, params: Params) -> dict:
    stages.check_sets(params)
    with stages.tracked(params, "train", not args.no_track) as run:
        res = stages.train(params, args.item, run, resume=args.resume)
    nxt = "gbmseg resolve" if args.item != params.finetune.target else "gbmseg evaluate"
    return res | {"next": nxt}


def _pretrained_flag(sp: argparse.ArgumentParser) -> None:
    param(
        sp,
        "--pretrained",
        "finetune.pretrained",
        "model folder or models:/NAME@ALIAS to start from",
        metavar="REF",
    )


@command(
    "resolve",
    "fetch finetune.pretrained (a folder or models:/NAME@ALIAS) into a tracked local folder",
    _pretrained_flag,
)
def _resolve(args, params: Params) -> dict:
    with stages.tracked(params, "resolve", not args.no_track) as run:
        res = stages.resolve(params, run)
    return res | {"next": "gbmseg finetune"}


def _finetune_args(sp: argparse.ArgumentParser) -> None:
    _resume(sp, "fine-tuning")


@command(
    "finetune",
    "fine-tune the resolved pretrained U-Net on the target set (strategy by size x similarity)",
    _finetune_args,
)
def _finetune(args, params: Params) -> dict:
    with stages.tracked(params, "finetune", not args.no_track) as run:
        res = stages.finetune(params, run, resume=args.resume)
    return res | {"next": "gbmseg evaluate"}


def _evaluate_args(sp: argparse.ArgumentParser) -> None:
    param(sp, "--model", "evaluate.model", "model folder to score", metavar="DIR")


@command(
    "evaluate",
    "score the fine-tuned model and the scratch baseline on the target's test images",
    _evaluate_args,
)
def _evaluate(args, params: Params) -> dict:
    with stages.tracked(params, "evaluate", not args.no_track) as run:
        res = stages.evaluate(params, run)
    return res | {"next": "gbmseg register"}


@command(
    "register",
    "register the evaluated model as @challenger; promote to @champion only if it is better",
    _evaluate_args,
)
def _register(args, params: Params) -> dict:
    with stages.tracked(params, "register", not args.no_track) as run:
        if run is None:
            raise ConfigError("register needs MLflow tracking; drop --no-track")
        res = stages.register(params, run)
    return res | {"next": f"browse it: mlflow ui --backend-store-uri {res['tracking_uri']}"}
