"""The daily commands: segment new images, measure the GBM on the masks."""

from __future__ import annotations

import argparse

from gbmseg import stages
from gbmseg.cli.base import command, param, switch
from gbmseg.config import Params


def _predict_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="images or folders")
    sp.add_argument(
        "--model",
        default="models:/gbmseg-unet@champion",
        help="models:/NAME@ALIAS, runs:/ID/model, a model folder or model.pt "
        "(default: %(default)s)",
    )
    param(sp, "--out", "predict.out", "output folder", metavar="DIR")
    param(sp, "--tile", "predict.tile", "tile size", metavar="PX")
    switch(sp, "--tta", "predict.tta", "flip test-time augmentation (4x compute)")
    switch(sp, "--probabilities", "predict.probabilities", "also write NAME.prob.tif")
    switch(sp, "--labelme", "predict.labelme", "also write NAME.json labelme polygons")


@command(
    "predict",
    "segment images of any size (PNG, TIFF, DM3/DM4) with a registered or local model",
    _predict_args,
)
def _predict(args, params: Params) -> dict:
    from gbmseg.steps import predict

    p = params.predict
    stages.setup_registry(params, args.model)
    label = params.validate_.labels[0]
    res = predict.run(
        p, args.model, args.images, p.out, positive=params.target_positive, label=label
    )
    return {
        "images": len(res),
        "out": p.out,
        "files": res,
        "next": f"gbmseg measure {p.out}",
    }


def _measure_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "masks",
        nargs="+",
        metavar="MASK_OR_DIR",
        help="masks (e.g. predict's *.mask.tif) or folders, in the target set's polarity",
    )
    param(
        sp,
        "--pixel-size",
        "measure.pixel_size_nm",
        "nm per pixel for every mask (default: each file's own calibration)",
        metavar="NM",
    )
    param(sp, "--out", "measure.out", "output folder", metavar="DIR")
    param(sp, "--biopsies", "measure.biopsies", "CSV with columns image,biopsy", metavar="CSV")
    sp.add_argument(
        "--compare",
        nargs="+",
        metavar="LABEL_OR_DIR",
        help="label masks (same names): thickness on prediction vs label, Bland-Altman plot",
    )


@command(
    "measure",
    "GBM thickness (nm, at each file's own pixel size): intercepts, Haas, mid-line; per biopsy",
    _measure_args,
)
def _measure(args, params: Params) -> dict:
    from gbmseg.steps import measure

    out = params.measure.out
    table = measure.run(
        params.measure, args.masks, out, params.target_positive, compare=args.compare
    )
    page = f"{out}/biopsy_report.html"
    return {
        "masks": len(table),
        "out": out,
        "harmonic_mean_nm": dict(zip(table["image"], table["intercept_harmonic_nm"], strict=True)),
        "next": f"open {page}, {out}/thickness.csv"
        + (f" and {out}/bland_altman.png" if args.compare else ""),
    }
