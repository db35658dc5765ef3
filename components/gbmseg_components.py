"""Kubeflow Pipelines v2 components: one per step, each a thin shell over the gbmseg CLI.

Every body maps its artifacts onto the params keys that name those paths and calls
``gbmseg.kfp_entry.call`` -> the same ``gbmseg.steps.<name>.run`` that `dvc repro` runs.
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
    raw: Input[Dataset],
    validated: Output[Dataset],
    summary: Output[Metrics],
):
    # data_version is part of this task's cache key: new data at the same URI is a new version
    import logging

    from gbmseg.kfp_entry import call

    logging.getLogger("gbmseg").info("data version %s", data_version)
    call(
        "validate",
        params,
        run_group,
        {"data.raw": raw.path, "validate.out": validated.path},
        summary,
    )


@component
def augment(
    params: dict,
    run_group: str,
    validated: Input[Dataset],
    augmented: Output[Dataset],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import call

    call(
        "augment",
        params,
        run_group,
        {"validate.out": validated.path, "augment.out": augmented.path},
        summary,
    )


@component
def pack(
    params: dict,
    run_group: str,
    validated: Input[Dataset],
    augmented: Input[Dataset],
    packed: Output[Dataset],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import call

    call(
        "pack",
        params,
        run_group,
        {"validate.out": validated.path, "augment.out": augmented.path, "pack.out": packed.path},
        summary,
    )


@component
def train(
    params: dict,
    run_group: str,
    packed: Input[Dataset],
    model: Output[Model],
    history: Output[Artifact],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import call

    call(
        "train",
        params,
        run_group,
        {
            "pack.out": packed.path,
            "train.out": model.path,
            "train.metrics": history.path + ".metrics.json",
            "train.history": history.path,
        },
        summary,
    )


@component
def finetune(
    params: dict,
    run_group: str,
    pretrained: Input[Model],
    packed: Input[Dataset],
    model: Output[Model],
    history: Output[Artifact],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import call

    call(
        "finetune",
        params,
        run_group,
        {
            "finetune.pretrained": pretrained.path,
            "pack.out": packed.path,
            "finetune.out": model.path,
            "finetune.metrics": history.path + ".metrics.json",
            "finetune.history": history.path,
        },
        summary,
    )


@component
def evaluate(
    params: dict,
    run_group: str,
    model: Input[Model],
    validated: Input[Dataset],
    packed: Input[Dataset],
    report: Output[HTML],
    summary: Output[Metrics],
):
    from gbmseg.kfp_entry import call

    call(
        "evaluate",
        params,
        run_group,
        {
            "train.out": model.path,
            "validate.out": validated.path,
            "pack.out": packed.path,
            "evaluate.out": report.path,
            "evaluate.metrics": report.path + "/metrics.json",
        },
        summary,
    )


@component
def register(
    params: dict,
    run_group: str,
    model: Input[Model],
    validated: Input[Dataset],
    report: Input[HTML],
    registration: Output[Artifact],
) -> str:
    from gbmseg.kfp_entry import call

    res = call(
        "register",
        params,
        run_group,
        {
            "train.out": model.path,
            "validate.out": validated.path,
            "evaluate.out": report.path,
            "evaluate.metrics": report.path + "/metrics.json",
            "register.out": registration.path,
        },
    )
    return f"{res['name']}/{res['version']}@{res['alias']}"
