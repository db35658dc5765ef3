"""Kubeflow Pipelines v2 components: one per stage, each a thin shell over gbmseg.

Every body maps its artifacts onto the params keys that name those paths and calls
``gbmseg.kfp_entry.run`` -> the same ``gbmseg.stages`` function `dvc repro` runs.  Per-set
stages take the set's name (``item``) and write into ``<artifact>/<item>``, as DVC writes
into ``<base>/<item>``.
"""

import os

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

IMAGE = os.environ.get("GBMSEG_IMAGE", "ghcr.io/gbmseg/gbmseg:0.1.0")
component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def validate(
    params: dict,
    run_group: str,
    data_version: str,
    item: str,
    raw: Input[Dataset],
    validated: Output[Dataset],
    summary: Output[Metrics],
):
    # data_version is part of this task's cache key: new data at the same URI is a new version
    from gbmseg.kfp_entry import run

    paths = {f"sets.{item}.raw": raw.path, "validate.out": validated.path}
    run("validate", params, run_group, paths, item, summary)


@component
def augment(
    params: dict,
    run_group: str,
    item: str,
    validated: Input[Dataset],
    augmented: Output[Dataset],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import run

    paths = {"validate.out": validated.path, "augment.out": augmented.path}
    run("augment", params, run_group, paths, item, summary)


@component
def pack(
    params: dict,
    run_group: str,
    item: str,
    splits: dict,
    validated: Input[Dataset],
    augmented: Input[Dataset],
    packed: Output[Dataset],
    split_file: Output[Artifact],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import run, write_split

    write_split(split_file.path, item, splits.get(item, {}))
    paths = {
        "validate.out": validated.path,
        "augment.out": augmented.path,
        "pack.out": packed.path,
        "pack.splits": split_file.path,
    }
    run("pack", params, run_group, paths, item, summary)


@component
def train(
    params: dict,
    run_group: str,
    item: str,
    packed: Input[Dataset],
    model: Output[Model],
    history: Output[Artifact],
    summary: Output[Metrics],
):
    import tempfile

    from gbmseg.kfp_entry import run

    paths = {
        "pack.out": packed.path,
        "train.out": model.path,
        "train.metrics": history.path,
        "train.history": history.path,
        "train.checkpoints": tempfile.mkdtemp(prefix="gbmseg-ckpt-"),
    }
    run("train", params, run_group, paths, item, summary)


@component
def selfsup(
    params: dict,
    run_group: str,
    data_version: str,
    item: str,
    unlabelled: Input[Dataset],
    packed: Input[Dataset],
    model: Output[Model],
    history: Output[Artifact],
    summary: Output[Metrics],
):
    # packed: the target's, whose test images are left out; data_version keys the cache
    from gbmseg.kfp_entry import run

    paths = {
        f"selfsup.unlabelled.{item}": unlabelled.path,
        "pack.out": packed.path,
        "train.out": model.path,
        "selfsup.metrics": history.path,
        "selfsup.history": history.path,
    }
    run("selfsup", params, run_group, paths, item, summary)


@component
def resolve(params: dict, run_group: str, ref: str, model: Output[Model]):
    from gbmseg.kfp_entry import run

    run("resolve", params, run_group, {"finetune.pretrained": ref, "resolve.out": model.path})


@component
def finetune(
    params: dict,
    run_group: str,
    pretrained_item: str,
    pretrained: Input[Model],
    packed: Input[Dataset],
    model: Output[Model],
    history: Output[Artifact],
    summary: Output[Metrics],
):
    import os
    import tempfile

    from gbmseg.kfp_entry import run

    paths = {
        "resolve.out": os.path.join(pretrained.path, pretrained_item),
        "pack.out": packed.path,
        "finetune.out": model.path,
        "finetune.metrics": history.path + "/metrics.json",
        "finetune.history": history.path + "/history.csv",
        "train.checkpoints": tempfile.mkdtemp(prefix="gbmseg-ckpt-"),
    }
    run("finetune", params, run_group, paths, None, summary)


@component
def evaluate(
    params: dict,
    run_group: str,
    item: str,
    model: Input[Model],
    baseline: Input[Model],
    validated: Input[Dataset],
    packed: Input[Dataset],
    report: Output[HTML],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import run

    paths = {
        "evaluate.model": model.path,
        "evaluate.baseline": baseline.path + "/" + item,
        "validate.out": validated.path,
        "pack.out": packed.path,
        "evaluate.out": report.path,
        "evaluate.metrics": report.path + "/metrics.json",
    }
    run("evaluate", params, run_group, paths, None, summary)


@component
def register(
    params: dict,
    run_group: str,
    model: Input[Model],
    validated: Input[Dataset],
    report: Input[HTML],
    registration: Output[Artifact],
) -> str:
    from gbmseg.kfp_entry import run

    paths = {
        "evaluate.model": model.path,
        "validate.out": validated.path,
        "evaluate.out": report.path,
        "evaluate.metrics": report.path + "/metrics.json",
        "register.out": registration.path,
    }
    res = run("register", params, run_group, paths)
    return f"{res['name']}/{res['version']}@{res['alias']}"
