"""The lab's loop around a model: what to label next (suggest), sharing it (export)."""

from __future__ import annotations

import argparse

from gbmseg import stages
from gbmseg.cli.base import command, param
from gbmseg.config import Params


def _model(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--model",
        default="models:/gbmseg-unet@champion",
        help="models:/NAME@ALIAS, runs:/ID/model or a model folder (default: %(default)s)",
    )


def _suggest_args(sp: argparse.ArgumentParser) -> None:
    _model(sp)
    param(sp, "--images", "suggest.images", "folder of unlabelled images", metavar="DIR")
    param(sp, "--top", "suggest.top", "images to propose", metavar="N")
    param(sp, "--score", "suggest.score", "disagreement | entropy | random", metavar="NAME")
    param(sp, "--out", "suggest.out", "output folder for the drafts", metavar="DIR")


@command(
    "suggest",
    "rank unlabelled images by the model's uncertainty; write the top N as labelme drafts",
    _suggest_args,
    epilog="The loop: correct the drafts in labelme, move image + JSON into the target's "
    "images/ folder, `dvc commit -f data.dvc`, then `dvc repro` (earlier test images stay "
    "test; the registry decides whether the new model is promoted).",
)
def _suggest(args, params: Params) -> dict:
    res = stages.suggest(params, model=args.model)
    out = params.suggest.out
    target = params.labelled(params.finetune.target).raw
    from gbmseg.steps.suggest import MEASURED

    return {
        "ranked": res["ranked"],
        "drafts": res["drafts"],
        "out": out,
        "measured": MEASURED if params.suggest.score != "random" else "a seeded random draw",
        "next": f"open each {out}/*.json in labelme and correct it (see {out}/contact_sheet.png); "
        f"then move image + JSON into {target}/images/, `dvc commit -f data.dvc`, `dvc repro`",
    }


def _export_args(sp: argparse.ArgumentParser) -> None:
    _model(sp)
    param(sp, "--out", "export.out", "output folder", metavar="DIR")
    param(sp, "--sample", "export.sample", "image for the test input", metavar="IMAGE")


@command(
    "export",
    "a model as a BioImage Model Zoo package (zip) and a plain ONNX file, both checked",
    _export_args,
)
def _export(args, params: Params) -> dict:
    res = stages.export(params, args.model)
    return {
        "zip": res["zip"],
        "onnx": res["onnx"],
        "onnx_max_abs_diff": res["onnx_max_abs_diff"],
        "bioimageio_test": (res["bioimageio_test"] or {}).get("status", "not run"),
        "next": f"bioimageio test {res['package']}; or open {res['zip']} in ilastik, deepImageJ "
        "or QuPath; run the ONNX file with onnxruntime",
    }
