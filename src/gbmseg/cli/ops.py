"""Operations subcommands: ``gbmseg kfp submit|schedule`` and ``gbmseg storage push|pull``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gbmseg.cli.base import command
from gbmseg.config import ConfigError, Params, without_nulls

log = logging.getLogger("gbmseg")
PACKAGE = Path("pipelines/gbmseg_pipeline.yaml")


def _kfp_arguments(sp: argparse.ArgumentParser) -> None:
    sp.epilog = (
        "examples:\n"
        "  gbmseg storage push data/raw/target s3://gbmseg-data/target   # stage the data first\n"
        "  gbmseg kfp submit --dry-run        # show what would be sent\n"
        "  gbmseg kfp submit --run-name try-1\n"
        "  gbmseg kfp schedule --pretrained models:/gbmseg-unet@champion\n"
        "                                     # weekly: fine-tune the champion on the latest labels"
    )
    sp.add_argument("action", choices=["submit", "schedule"])
    sp.add_argument(
        "--package", type=Path, default=PACKAGE, help="compiled pipeline (default: %(default)s)"
    )
    sp.add_argument("--source-uri", help="source set to import (default: kfp.source_uri)")
    sp.add_argument("--target-uri", help="target set to import (default: kfp.target_uri)")
    sp.add_argument(
        "--unlabelled-uri", help="unlabelled images to import (default: kfp.unlabelled_uri)"
    )
    sp.add_argument(
        "--pretrained",
        help="start from this model instead of pretraining (e.g. models:/gbmseg-unet@champion),"
        " or 'selfsup' (pretrain on the unlabelled images); default: finetune.pretrained when it"
        " is a registry model or a selfsup model, else pretrain on the source",
    )
    sp.add_argument("--run-name", default="gbmseg", help="run or recurring-run name")
    sp.add_argument("--dry-run", action="store_true", help="print the arguments, contact no server")


@command(
    "kfp",
    "submit the compiled pipeline to Kubeflow, or schedule it (cron from kfp.cron)",
    _kfp_arguments,
)
def _kfp(args, params: Params) -> dict:
    from gbmseg import kfp_client

    if not args.package.is_file():
        raise ConfigError(f"{args.package}: no compiled pipeline; run `make pipeline`")
    tree = without_nulls(params.model_dump(mode="json", by_alias=True))
    sent = kfp_client.arguments(
        tree, params, args.source_uri, args.target_uri, args.pretrained, args.unlabelled_uri
    )
    if args.dry_run:
        return {"action": args.action, "arguments": sent, "cron": params.kfp.cron}
    client = kfp_client.connect(params.kfp)
    if args.action == "submit":
        run_id = kfp_client.submit(client, params.kfp, args.package, sent, args.run_name)
        return {
            "run_id": run_id,
            "data_version": sent["data_version"],
            "next": "watch it in the KFP UI",
        }
    job = kfp_client.schedule(client, params.kfp, args.package, sent, args.run_name)
    return {"recurring_run_id": job, "cron": params.kfp.cron}


def _storage_arguments(sp: argparse.ArgumentParser) -> None:
    sp.epilog = (
        "push uploads LOCAL to s3://BUCKET/PREFIX with a _COMPLETE marker written last;\n"
        "pull refuses a prefix without one (an unfinished upload) and checks every sha256.\n"
        "Endpoint: AWS_ENDPOINT_URL_S3 (MinIO and other S3-compatible stores)."
    )
    sp.add_argument("action", choices=["push", "pull"])
    sp.add_argument("source", help="push: local folder; pull: s3:// URI")
    sp.add_argument("dest", help="push: s3:// URI; pull: local folder")


@command(
    "storage",
    "copy a folder to or from S3 (push/pull), verified and never half-written",
    _storage_arguments,
)
def _storage(args, params: Params) -> dict:
    from gbmseg import storage

    if args.action == "push":
        if not Path(args.source).is_dir():
            raise ConfigError(f"{args.source}: no such folder to push")
        storage.ensure_bucket(storage.S3Uri.parse(args.dest).bucket)
        files = storage.upload_dir(args.source, args.dest)
    else:
        files = storage.download_dir(args.source, args.dest)
    return {"files": len(files), "from": args.source, "to": args.dest}
