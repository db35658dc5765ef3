"""Submitting and scheduling the compiled pipeline on a Kubeflow Pipelines cluster.

The only gbmseg module that talks to a KFP API server (steps never import kfp).  Each run
gets the parsed params.yaml as its ``params`` argument, so the cluster runs exactly the
configuration DVC runs; the committed split files, so the cluster gives every image the
split DVC gives it; the registry model to start from (or "" to pretrain on the source set);
and a ``data_version`` (a content hash of the source and target data) that keys Kubeflow's
cache: a changed dataset can never be served a stale cached step.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from gbmseg.config import KfpParams, Params, is_registry_ref
from gbmseg.data import splits
from gbmseg.data.atomic import sha256_file

log = logging.getLogger(__name__)


def fingerprint(raw_uri: str) -> str:
    """Content hash of the raw data: the S3 upload's marker (it lists each file's sha256),
    or the files of a local folder."""
    h = hashlib.sha256()
    if raw_uri.startswith("s3://"):
        from gbmseg import storage

        h.update(storage.read_marker(raw_uri))
    else:
        root = Path(raw_uri)
        files = sorted(q for q in root.rglob("*") if q.is_file())
        if not files:
            raise FileNotFoundError(f"{raw_uri}: no data files to fingerprint")
        for q in files:
            h.update(f"{q.relative_to(root).as_posix()}:{sha256_file(q)}\n".encode())
    return h.hexdigest()[:20]


def arguments(
    tree: dict[str, Any],
    params: Params,
    source_uri: str | None = None,
    target_uri: str | None = None,
    pretrained: str | None = None,
    unlabelled_uri: str | None = None,
) -> dict[str, Any]:
    """The pipeline's arguments for a run of ``params`` (``tree``: the same, as sent).
    ``pretrained``: "" pretrains on the source, "selfsup" on the unlabelled images, a
    registry URI starts from that model; default: what finetune.pretrained names."""
    kp = params.kfp
    ref = params.finetune.pretrained
    if pretrained is None:
        own = "selfsup" if params.pretrained_unlabelled() else ""
        pretrained = ref if is_registry_ref(ref) else own
    source = source_uri or kp.source_uri
    target = target_uri or kp.target_uri
    unlabelled = unlabelled_uri or kp.unlabelled_uri
    extra = {"": [source], "selfsup": [unlabelled]}.get(pretrained, [])
    uris = [*extra, target]
    version = hashlib.sha256("".join(fingerprint(u) for u in uris).encode()).hexdigest()[:20]
    tables = {
        name: splits.read(params.paths(name).split_file)
        for name in params.sets
        if params.paths(name).split_file.is_file()
    }
    return {
        "source_uri": source if pretrained == "" else "",
        "target_uri": target,
        "unlabelled_uri": unlabelled if pretrained == "selfsup" else "",
        "suggest_uri": kp.suggest_uri,
        "pretrained": pretrained,
        "splits": tables,
        "data_version": version,
        "params": tree,
    }


def connect(kp: KfpParams):
    import kfp

    return kfp.Client(host=kp.host or None, namespace=kp.namespace)


def submit(client, kp: KfpParams, package: Path, args: dict[str, Any], run_name: str) -> str:
    res = client.create_run_from_pipeline_package(
        str(package),
        arguments=args,
        run_name=run_name,
        experiment_name=kp.experiment,
        namespace=kp.namespace,
        enable_caching=True,
    )
    log.info("submitted run %s (data version %s)", res.run_id, args["data_version"])
    return res.run_id


def schedule(client, kp: KfpParams, package: Path, args: dict[str, Any], job_name: str) -> str:
    """A recurring run on ``kp.cron``: at most ``max_concurrency`` at once and no catch-up
    (missed slots are skipped, never backfilled).  Caching is off: a schedule re-reads
    whatever data is at raw_uri when it fires, so a fixed data_version cannot key it."""
    try:
        exp = client.get_experiment(experiment_name=kp.experiment, namespace=kp.namespace)
    except Exception:  # kfp raises ValueError / ApiException when it does not exist
        exp = client.create_experiment(kp.experiment, namespace=kp.namespace)
    job = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=job_name,
        cron_expression=kp.cron,
        max_concurrency=kp.max_concurrency,
        no_catchup=True,
        params=args,
        pipeline_package_path=str(package),
        enabled=True,
        enable_caching=False,
    )
    log.info("scheduled %s on cron %r (no catch-up)", job_name, kp.cron)
    return job.recurring_run_id
