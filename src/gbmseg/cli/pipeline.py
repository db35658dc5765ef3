"""The pipeline's subcommands (what `dvc repro` runs): each a call into ``gbmseg.stages``
inside the step's MLflow run, then a hint at the next step."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gbmseg import stages
from gbmseg.cli.base import Arguments, command, item_argument, param
from gbmseg.config import ConfigError, Params


def _resume(what: str) -> Arguments:
    def add(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--resume", action="store_true", help=f"continue {what} from its last.pt if any"
        )

    return add


def _both(*parts: Arguments) -> Arguments:
    def add(sp: argparse.ArgumentParser) -> None:
        for part in parts:
            part(sp)

    return add


def stage(
    name: str,
    summary: str,
    arguments: Arguments | None = None,
    per_set: bool = False,
    resume: bool = False,
    after: Callable[[argparse.Namespace, Params], str] | None = None,
    fn: Callable[..., dict] | None = None,
    unchanged: Callable[[Params], dict | None] | None = None,
) -> None:
    """Register ``gbmseg <name>``: run ``fn`` (default ``stages.<name>``; on the set given,
    for per-set stages) inside the step's MLflow run, unless ``unchanged`` says its output
    is already what it would write (then no run is opened)."""
    run_stage = fn or getattr(stages, name)

    def body(args: argparse.Namespace, params: Params) -> dict:
        extra = {"resume": args.resume} if resume else {}
        item = (args.item,) if per_set else ()
        res = unchanged(params) if unchanged else None
        if res is None:
            with stages.tracked(params, name, not args.no_track) as run:
                res = run_stage(params, *item, run, **extra)
        return res | {"next": after(args, params)} if after else res

    body.__module__ = __name__
    command(name, summary, arguments)(body)


def _validate_args(sp: argparse.ArgumentParser) -> None:
    item_argument(sp)
    param(sp, "--raw", "sets.{item}.raw", "folder with images/ and masks/ to check", metavar="DIR")
    param(sp, "--out", "validate.out", "base folder of the normalised sets", metavar="DIR")


def _pretrained(sp: argparse.ArgumentParser) -> None:
    param(
        sp,
        "--pretrained",
        "finetune.pretrained",
        "folder or models:/NAME@ALIAS to start from",
        metavar="REF",
    )


def _model(sp: argparse.ArgumentParser) -> None:
    param(sp, "--model", "evaluate.model", "model folder to score", metavar="DIR")


@command("synth", "generate the demo's synthetic source and target sets (byte-deterministic)")
def _synth(args, params: Params) -> dict:
    return stages.synth(params) | {"next": "dvc repro (or gbmseg validate source|target)"}


stage(
    "validate",
    "check a labelled set with a Great Expectations suite, then normalise it",
    _validate_args,
    per_set=True,
    after=lambda a, p: f"gbmseg augment {a.item}",
)
stage(
    "augment",
    "write N augmented copies per training image (the recipe's 7 transforms)",
    item_argument,
    per_set=True,
    after=lambda a, p: f"gbmseg pack {a.item}",
)
stage(
    "pack",
    "give new images a split (split file), cut tiles into .npy arrays",
    item_argument,
    per_set=True,
    after=lambda a, p: f"gbmseg train {a.item}",
)


def _check_then_train(params: Params, name: str, run, resume: bool = False) -> dict:
    stages.check_sets(params)
    return stages.train(params, name, run, resume=resume)


stage(
    "train",
    "train a U-Net from scratch on a set: pretraining (source) or the baseline (target)",
    _both(lambda sp: item_argument(sp, default=None), _resume("training")),
    per_set=True,
    resume=True,
    fn=_check_then_train,  # refuses a set that nothing would use
    after=lambda a, p: "gbmseg evaluate" if a.item == p.baseline_set() else "gbmseg resolve",
)


def _unlabelled(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "item", metavar="NAME", help="an unlabelled folder named under selfsup.unlabelled"
    )


stage(
    "selfsup",
    "pretrain a U-Net on images without masks (masked denoising): a start for fine-tuning",
    _unlabelled,
    per_set=True,
    after=lambda a, p: (
        "gbmseg resolve"
        if p.finetune.pretrained == f"{p.train.out}/{a.item}"
        else f"set finetune.pretrained: {p.train.out}/{a.item}, then gbmseg resolve"
    ),
)
stage(
    "resolve",
    "fetch finetune.pretrained (a folder or models:/NAME@ALIAS) into a tracked local folder",
    _pretrained,
    after=lambda a, p: "gbmseg finetune",
    unchanged=stages.resolve_unchanged,  # a no-op `dvc repro` imports neither torch nor MLflow
)
stage(
    "finetune",
    "fine-tune the resolved pretrained U-Net on the target set (strategy by size x similarity)",
    _resume("fine-tuning"),
    resume=True,
    after=lambda a, p: "gbmseg evaluate",
)
stage(
    "evaluate",
    "score the fine-tuned model and the scratch baseline on the target's test images",
    _model,
    after=lambda a, p: "gbmseg register",
)


@command(
    "register",
    "register the evaluated model as @challenger; promote to @champion only if it is better",
    _model,
)
def _register(args, params: Params) -> dict:
    with stages.tracked(params, "register", not args.no_track) as run:
        if run is None:
            raise ConfigError("register needs MLflow tracking; drop --no-track")
        res = stages.register(params, run)
    return res | {"next": f"browse it: mlflow ui --backend-store-uri {res['tracking_uri']}"}
