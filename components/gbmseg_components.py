"""Kubeflow Pipelines v2 components: one per stage, each a thin shell over gbmseg.

Every body hands its artifacts' paths by role to ``gbmseg.kfp_entry.run_task``, which owns
their mapping onto params keys (``kfp_entry.ARTIFACTS``) and runs the same ``gbmseg.stages``
function `dvc repro` runs.  Per-set stages take the set's name (``item``) and write into
``<artifact>/<item>``, as DVC writes into ``<base>/<item>``.
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
    from gbmseg.kfp_entry import run_task

    run_task("validate", params, run_group, item, summary, raw=raw.path, validated=validated.path)


@component
def augment(
    params: dict,
    run_group: str,
    item: str,
    validated: Input[Dataset],
    augmented: Output[Dataset],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import run_task

    paths = {"validated": validated.path, "augmented": augmented.path}
    run_task("augment", params, run_group, item, summary, **paths)


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
    from gbmseg.kfp_entry import run_task, write_split

    write_split(split_file.path, item, splits.get(item, {}))
    paths = {"validated": validated.path, "augmented": augmented.path, "packed": packed.path}
    run_task("pack", params, run_group, item, summary, split_file=split_file.path, **paths)


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
    from gbmseg.kfp_entry import run_task

    paths = {"packed": packed.path, "model": model.path, "history": history.path}
    run_task("train", params, run_group, item, summary, **paths)


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
    from gbmseg.kfp_entry import run_task

    paths = {"unlabelled": unlabelled.path, "packed": packed.path, "model": model.path}
    run_task("selfsup", params, run_group, item, summary, history=history.path, **paths)


@component
def resolve(params: dict, run_group: str, ref: str, model: Output[Model]):
    from gbmseg.kfp_entry import run_task

    run_task("resolve", params, run_group, ref=ref, model=model.path)


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
    from gbmseg.kfp_entry import run_task

    paths = {"pretrained": pretrained.path, "packed": packed.path, "model": model.path}
    run_task("finetune", params, run_group, None, summary, history=history.path,
             pretrained_item=pretrained_item, **paths)  # fmt: skip


@component
def evaluate(
    params: dict,
    run_group: str,
    item: str,
    model: Input[Model],
    validated: Input[Dataset],
    packed: Input[Dataset],
    report: Output[HTML],
    summary: Output[Metrics],
    baseline: Input[Model] = None,
):
    from gbmseg.kfp_entry import run_task

    base = baseline.path if baseline is not None else ""  # none: evaluate.baseline ''
    paths = {"model": model.path, "baseline": base, "validated": validated.path}
    run_task("evaluate", params, run_group, item, summary, packed=packed.path,
             report=report.path, **paths)  # fmt: skip


@component
def register(
    params: dict,
    run_group: str,
    model: Input[Model],
    validated: Input[Dataset],
    report: Input[HTML],
    registration: Output[Artifact],
) -> str:
    from gbmseg.kfp_entry import run_task

    paths = {"model": model.path, "validated": validated.path, "report": report.path}
    res = run_task("register", params, run_group, registration=registration.path, **paths)
    return f"{res['name']}/{res['version']}@{res['alias']}"


@component
def suggest(
    params: dict,
    run_group: str,
    model: Input[Model],
    packed: Input[Dataset],
    unlabelled: Input[Dataset],
    drafts: Output[Dataset],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import run_task

    run_task("suggest", params, run_group, None, summary, model=model.path, packed=packed.path,
             unlabelled=unlabelled.path, drafts=drafts.path)  # fmt: skip
