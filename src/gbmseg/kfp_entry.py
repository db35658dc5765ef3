"""What a Kubeflow component body calls: the same stage functions `dvc repro` runs, on the
artifact paths Kubeflow hands the component.

Each component hands its artifacts' paths by role to ``run_task``; ``ARTIFACTS`` maps them
onto the params keys that name those paths (per-set outputs live in ``<artifact>/<set>``,
exactly as under DVC's base folders), and ``run`` runs the stage.  No kfp import here: the
component passes its Metrics artifact in, and only its ``log_metric`` method is used.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

import yaml

from gbmseg import stages
from gbmseg.config import apply_override, validate_tree
from gbmseg.data import splits
from gbmseg.runlog import numbers

log = logging.getLogger("gbmseg")
STAGES = {
    "validate": stages.validate,
    "augment": stages.augment,
    "pack": stages.pack,
    "train": stages.train,
    "selfsup": stages.selfsup,
    "resolve": stages.resolve,
    "finetune": stages.finetune,
    "evaluate": stages.evaluate,
    "register": stages.register,
    "suggest": stages.suggest,
}


SET_FREE = (
    "resolve",
    "finetune",
    "evaluate",
    "register",
    "suggest",
)  # stages that take no set name


class MetricsSink(Protocol):
    def log_metric(self, metric: str, value: float) -> None: ...


def torchrun_command(argv: list[str], gpus: int) -> list[str]:
    """One node, ``gpus`` processes: torchrun's own launcher, no home-made one."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "gbmseg",
        *argv,
    ]


ARTIFACTS = {  # stage -> params key -> its path, from the task's artifact paths (by role)
    "validate": {"sets.{item}.raw": "{raw}", "validate.out": "{validated}"},
    "augment": {"validate.out": "{validated}", "augment.out": "{augmented}"},
    "pack": {
        "validate.out": "{validated}",
        "augment.out": "{augmented}",
        "pack.out": "{packed}",
        "pack.splits": "{split_file}",
    },
    "train": {
        "pack.out": "{packed}",
        "train.out": "{model}",
        "train.metrics": "{history}",
        "train.history": "{history}",
        "train.checkpoints": "{scratch}",
    },
    "selfsup": {
        "selfsup.unlabelled.{item}": "{unlabelled}",
        "pack.out": "{packed}",
        "train.out": "{model}",
        "selfsup.metrics": "{history}",
        "selfsup.history": "{history}",
    },
    "resolve": {"finetune.pretrained": "{ref}", "resolve.out": "{model}"},
    "finetune": {
        "resolve.out": "{pretrained}/{pretrained_item}",
        "pack.out": "{packed}",
        "finetune.out": "{model}",
        "finetune.metrics": "{history}/metrics.json",
        "finetune.history": "{history}/history.csv",
        "train.checkpoints": "{scratch}",
    },
    "evaluate": {
        "evaluate.model": "{model}",
        "evaluate.baseline": "{baseline}/{item}",
        "validate.out": "{validated}",
        "pack.out": "{packed}",
        "evaluate.out": "{report}",
        "evaluate.metrics": "{report}/metrics.json",
    },
    "register": {
        "evaluate.model": "{model}",
        "validate.out": "{validated}",
        "evaluate.out": "{report}",
        "evaluate.metrics": "{report}/metrics.json",
        "register.out": "{registration}",
    },
    "suggest": {
        "evaluate.model": "{model}",
        "pack.out": "{packed}",
        "suggest.images": "{unlabelled}",
        "suggest.out": "{drafts}",
    },
}  # per-set folders inside an artifact: <artifact>/<set>, as DVC's <base>/<set>; an optional
# artifact left out ('' as its path, e.g. no baseline) leaves its key ''


def artifact_paths(step: str, item: str | None = None, **artifacts: str) -> dict[str, str]:
    """The params keys of stage ``step`` set from its task's artifact paths (``artifacts``:
    role -> path; ``scratch``, a temporary folder for checkpoints, is made here)."""
    roles = {"item": item or "", **artifacts}
    if "{scratch}" in "".join(ARTIFACTS[step].values()):
        roles.setdefault("scratch", tempfile.mkdtemp(prefix="gbmseg-ckpt-"))

    def path(template: str) -> str:
        role = template[1 : template.index("}")] if template.startswith("{") else None
        return "" if role and roles.get(role) == "" else template.format(**roles)

    return {key.format(**roles): path(value) for key, value in ARTIFACTS[step].items()}


def run_task(
    step: str,
    params: dict[str, Any],
    run_group: str,
    item: str | None = None,
    metrics: MetricsSink | None = None,
    **artifacts: str,
) -> dict[str, Any]:
    """A component body: stage ``step`` on its artifacts (role -> path, see ARTIFACTS)."""
    paths = artifact_paths(step, item, **artifacts)
    return run(step, params, run_group, paths, None if step in SET_FREE else item, metrics)


def with_paths(params: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """A copy of the params tree with ``paths`` (params key -> local path) applied."""
    tree = copy.deepcopy(params)
    for key, value in paths.items():
        apply_override(tree, f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    return tree


def write_split(folder: str, name: str, table: dict[str, str]) -> None:
    """Seed the set's split file from the table the pipeline was submitted with."""
    if table:
        splits.write(Path(folder) / f"{name}.csv", table)


def _torchrun(step: str, item: str | None, tree: dict, gpus: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        params_file = Path(tmp) / "params.yaml"
        params_file.write_text(yaml.safe_dump(tree, sort_keys=False))
        argv = [step, *([item] if item else []), "--params", str(params_file)]
        subprocess.run(torchrun_command(argv, gpus), check=True)
    parsed = validate_tree(tree)
    metrics = parsed.train_params(item).metrics if step == "train" else parsed.finetune.metrics
    return json.loads(Path(metrics).read_text())


def run(
    step: str,
    params: dict[str, Any],
    run_group: str,
    paths: dict[str, str],
    item: str | None = None,
    metrics: MetricsSink | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """Run stage ``step`` (on set ``item``) with ``paths`` overriding ``params`` (the parsed
    params.yaml the pipeline was compiled or submitted with); return its result."""
    from gbmseg.cli.app import setup_logging

    setup_logging(verbose=False)
    if step == "train":  # on the parameters as submitted, before this task's own paths
        stages.check_sets(validate_tree(params, "pipeline params"))
    tree = with_paths(params, paths)
    parsed = validate_tree(tree, "pipeline params")
    for key, value in paths.items():
        if key.endswith((".metrics", ".history")):
            Path(value).parent.mkdir(parents=True, exist_ok=True)
    os.environ["GBMSEG_PIPELINE_RUN"] = run_group
    if step in ("train", "finetune") and parsed.train.gpus > 1:
        result = _torchrun(step, item, tree, parsed.train.gpus)
    else:
        with stages.tracked(parsed, step, track) as run_log:
            args = (parsed, item, run_log) if step in stages.PER_SET else (parsed, run_log)
            result = STAGES[step](*args)
    if metrics is not None:
        for key, value in numbers(result).items():
            if math.isfinite(value):  # Kubeflow's metadata store cannot hold NaN or inf
                metrics.log_metric(key, value)
            else:
                log.info("%s is %s: left out of the Kubeflow metrics", key, value)
    log.info("%s%s finished: %s", step, f" {item}" if item else "", result)
    return result
