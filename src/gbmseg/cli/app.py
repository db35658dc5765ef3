"""Argument parser and entry point of the ``gbmseg`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gbmseg import __version__
from gbmseg.cli import daily, loop, ops, pipeline
from gbmseg.cli.base import COMMANDS, EXIT_BAD_INPUT, EXIT_FAILED, overrides
from gbmseg.config import ConfigError, load

EPILOG = """Each step reads its section of params.yaml. Run them all with `dvc repro`.
Examples:
  gbmseg synth                        # demo data: data/raw/source and data/raw/target
  gbmseg validate target --raw ~/gbm-labels --no-track
  gbmseg train source -S train.epochs=5   # override a parameter for one run
  gbmseg predict scans/ --out predictions && gbmseg measure predictions --pixel-size 2.5
"""
NOISY = ("great_expectations", "alembic", "mlflow", "urllib3", "botocore", "numexpr", "tifffile")


def _common() -> argparse.ArgumentParser:
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
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gbmseg",
        description="Train, fine-tune, evaluate and ship U-Nets for EM segmentation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gbmseg {__version__}")
    common = _common()
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    groups = [m.__name__ for m in (pipeline, daily, loop, ops)]  # pipeline order, then the rest
    for cmd in sorted(COMMANDS.values(), key=lambda c: groups.index(c.body.__module__)):
        sp = sub.add_parser(
            cmd.name,
            parents=[common],
            help=cmd.summary,
            description=cmd.summary,
            epilog=cmd.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if cmd.arguments is not None:
            cmd.arguments(sp)
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger("gbmseg")
    from gbmseg.data.io import DataError
    from gbmseg.engine.preemption import EXIT_CODE, TrainingInterrupted
    from gbmseg.errors import (
        CheckpointError,
        ExportError,
        StorageError,
        TrackingError,
        TrainingDiverged,
    )

    try:
        params = load(args.params, overrides(args))
        result = COMMANDS[args.command].body(args, params)
    except (ConfigError, DataError, CheckpointError) as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    except (TrainingDiverged, StorageError, TrackingError, ExportError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        return EXIT_CODE
    except OSError as exc:  # a full disk, a file-size limit, a vanished folder
        where = f"{exc.filename}: " if exc.filename else ""
        log.error(
            "%s%s; nothing was published (earlier outputs are as they were): free space or "
            "fix the folder, then run again",
            where,
            exc.strerror or exc,
        )
        return EXIT_FAILED
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
