"""Argument parser and entry point of the ``gbmseg`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gbmseg import __version__, cli_ops  # noqa: F401  (cli_ops registers kfp, storage)
from gbmseg.cli import ARGUMENTS, COMMANDS, EXIT_BAD_INPUT, EXIT_FAILED, HELP
from gbmseg.config import ConfigError, load

EPILOG = """Each step reads its section of params.yaml. Run them all with `dvc repro`.
Examples:
  gbmseg synth                       # demo data into data/raw
  gbmseg validate ../shared/data/isbi2012 --out /tmp/isbi --no-track
  gbmseg train -S train.epochs=5     # override a parameter for one run
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gbmseg",
        description="Train, evaluate and ship U-Nets for EM segmentation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gbmseg {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--params", default="params.yaml", help="parameters file (default: %(default)s)"
    )
    common.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a parameter for this run (repeatable), like `dvc exp run -S`",
    )
    common.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    for name, text in HELP.items():
        sp = sub.add_parser(
            name,
            parents=[common],
            help=text,
            description=text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name in ARGUMENTS:
            ARGUMENTS[name](sp)
        if name == "synth":
            sp.add_argument("--out", help="output folder (default: data.raw)")
        if name == "validate":
            sp.add_argument(
                "dir", nargs="?", help="folder with images/ and masks/ (default: data.raw)"
            )
            sp.add_argument(
                "--out", help="where to write the normalised set (default: validate.out)"
            )
        if name == "train":
            sp.add_argument(
                "--resume",
                action="store_true",
                help="continue from <train.out>.ckpt/last.pt if it exists",
            )
        if name == "finetune":
            sp.add_argument(
                "--pretrained",
                help="model folder, model.pt or models:/NAME@ALIAS (default: finetune.pretrained)",
            )
            sp.add_argument("--packed", help="packed target tiles (default: pack.out)")
            sp.add_argument(
                "--resume",
                action="store_true",
                help="continue from <finetune.out>.ckpt/last.pt if it exists",
            )
        if name == "predict":
            sp.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="images or folders")
            sp.add_argument(
                "--model",
                default="models:/gbmseg-unet@champion",
                help="models:/NAME@ALIAS, runs:/ID/model, a model folder or model.pt "
                "(default: %(default)s)",
            )
            sp.add_argument("--out", help="output folder (default: predict.out)")
            sp.add_argument("--tile", type=int, help="tile size (default: predict.tile)")
            sp.add_argument("--tta", action="store_true", help="flip test-time augmentation")
            sp.add_argument("--probabilities", action="store_true", help="also write NAME.prob.tif")
        if name == "measure":
            sp.add_argument(
                "masks",
                nargs="+",
                metavar="MASK_OR_DIR",
                help="masks (e.g. predict's *.mask.tif) or folders, in data.positive polarity",
            )
            sp.add_argument(
                "--pixel-size",
                type=float,
                metavar="NM",
                help="nm per pixel (default: from TIFF tags, else measure.pixel_size_nm)",
            )
            sp.add_argument("--out", help="output folder (default: measure.out)")
        if name == "evaluate":
            sp.add_argument("--model", help="model folder or model.pt (default: train.out)")
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("great_expectations", "alembic", "mlflow", "urllib3", "botocore", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger("gbmseg")
    from gbmseg.data.io import DataError
    from gbmseg.engine.checkpoint import CheckpointError
    from gbmseg.engine.trainer import TrainingDiverged
    from gbmseg.errors import StorageError, TrackingError

    try:
        params = load(args.params, args.set)
        result = COMMANDS[args.command](args, params)
    except (ConfigError, DataError, CheckpointError) as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    except (TrainingDiverged, StorageError, TrackingError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
