"""What a Kubeflow component body calls: the CLI's step functions with artifact paths.

Kubeflow hands each component local paths for its input and output artifacts; this maps
them onto the params keys that name those paths and runs the same subcommand as
`dvc repro`.  No kfp import here: the component passes its Metrics artifact in, and only
its ``log_metric`` method is used.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

import yaml

from gbmseg.config import apply_override, load


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


def torchrun(argv: list[str], gpus: int, metrics_path: str) -> dict[str, Any]:
    subprocess.run(torchrun_command(argv, gpus), check=True)
    return json.loads(Path(metrics_path).read_text())


def call(
    step: str,
    params: dict[str, Any],
    run_group: str,
    paths: dict[str, str],
    metrics: MetricsSink | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """Run ``gbmseg <step>`` with ``paths`` (params key -> local path) overriding ``params``
    (the parsed params.yaml the pipeline was compiled or submitted with)."""
    from gbmseg.cli import COMMANDS
    from gbmseg.cli_parser import build_parser, setup_logging

    setup_logging(verbose=False)
    tree = copy.deepcopy(params)
    for key, value in paths.items():
        apply_override(tree, f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        params_file = Path(tmp) / "params.yaml"
        params_file.write_text(yaml.safe_dump(tree, sort_keys=False))
        parsed = load(params_file)
        for key, value in paths.items():
            if key.endswith((".out", ".metrics", ".history")):
                Path(value).parent.mkdir(parents=True, exist_ok=True)
        os.environ["GBMSEG_PIPELINE_RUN"] = run_group
        argv = [step, "--params", str(params_file)] + ([] if track else ["--no-track"])
        if step in ("train", "finetune") and parsed.train.gpus > 1:
            result = torchrun(argv, parsed.train.gpus, parsed.section(step).metrics)
        else:
            result = COMMANDS[step](build_parser().parse_args(argv), parsed)
    if metrics is not None:
        for key, value in result.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics.log_metric(key, float(value))
    logging.getLogger("gbmseg").info("%s finished: %s", step, result)
    return result
