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


@command(
    "predict",
    "segment images of any size (PNG/TIFF, 8/16-bit) with a registered or local model",
    _predict_args,
)
def _predict(args, params: Params) -> dict:
    from gbmseg.steps import predict

    p = params.predict
    stages.setup_registry(params, args.model)
    res = predict.run(p, args.model, args.images, p.out, params.target_positive)
    return {
        "images": len(res),
        "out": p.out,
        "files": res,
        "next": f"gbmseg measure {p.out} --pixel-size NM",
    }


def _measure_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "masks",
        nargs="+",
        metavar="MASK_OR_DIR",
        help="masks (e.g. predict's *.mask.tif) or folders, in the target set's polarity",
    )
    sp.add_argument(
        "--pixel-size",
        type=float,
        metavar="NM",
        help="nm per pixel (default: from TIFF tags, else measure.pixel_size_nm)",
    )
    param(sp, "--out", "measure.out", "output folder", metavar="DIR")


@command(
    "measure",
    "local GBM thickness (nm) along the membrane: table, histogram, coloured overlay",
    _measure_args,
)
def _measure(args, params: Params) -> dict:
    from gbmseg.steps import measure

    out = params.measure.out
    table = measure.run(params.measure, args.masks, out, params.target_positive, args.pixel_size)
    return {
        "masks": len(table),
        "out": out,
        "median_nm": dict(zip(table["image"], table["median_nm"], strict=True)),
        "next": f"open {out}/histogram.png and {out}/thickness.csv",
    }
