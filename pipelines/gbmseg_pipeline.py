"""The gbmseg Kubeflow pipeline: the DVC DAG, task for task, with params.yaml as its default.

    target: validate -> augment -> pack [-> train (scratch baseline, if in train.sets)]
    pretrained == "":        source: validate -> augment -> pack -> train -> finish
    pretrained == "selfsup": selfsup(unlabelled images; the target's test images left out)
                             -> finish
    pretrained == URI:       resolve(URI) -> finish     (e.g. models:/gbmseg-unet@champion)
    finish: finetune -> evaluate (beside the baseline, if any) -> register
            [-> suggest (suggest_uri: the unlabelled images to rank; drafts to label next)]

The same components serve the source and the target set (``prepare`` is called twice), and
``finish`` is one sub-pipeline whichever way the pretrained model came.  Resources, the GPU
pool's node selector and tolerations, and the Secrets exposed as env come from params.yaml's
``kfp`` and ``train`` sections, read here at compile time, as is whether the target is trained
from scratch as a baseline (``train.sets``, ``evaluate.baseline``: '' compiles no baseline).

Compile: ``python -m pipelines.gbmseg_pipeline`` (writes pipelines/gbmseg_pipeline.yaml).
"""

from pathlib import Path

import yaml
from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Input, Model

from components import gbmseg_components as c
from gbmseg.config import validate_tree, without_nulls

ROOT = Path(__file__).resolve().parents[1]
PARAMS = without_nulls(yaml.safe_load((ROOT / "params.yaml").read_text()))
KFP = PARAMS["kfp"]
_PARSED = validate_tree(PARAMS, "params.yaml")
TARGET = _PARSED.finetune.target
SOURCE = _PARSED.pretrained_set() or "source"
UNLABELLED = _PARSED.pretrained_unlabelled() or "unlabelled"
BASELINE = _PARSED.baseline_set() == TARGET  # the target trained from scratch, scored beside
COMPILED = Path(__file__).with_suffix(".yaml")


def on_cpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    task.set_cpu_request(KFP["cpu_request"]).set_memory_request(KFP["memory_request"])
    for name, keys in KFP["secrets"].items():
        kubernetes.use_secret_as_env(
            task, secret_name=name, secret_key_to_env={k: k for k in keys}, optional=True
        )
    return task


def on_gpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """A GPU node of the pool: accelerator limit (train.gpus), selector, tolerations."""
    pool, gpus = KFP["gpu_pool"], int(PARAMS["train"]["gpus"])
    on_cpu(task)
    task.set_accelerator_type(pool["accelerator"]).set_accelerator_limit(gpus)
    task.set_cpu_request(str(4 * gpus)).set_memory_request(f"{16 * gpus}G")
    for key, value in pool["node_selector"].items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for tol in pool["tolerations"]:
        kubernetes.add_toleration(task, **tol)
    return task


def prepare(
    params: dict,
    run_group: str,
    data_version: str,
    item: str,
    splits: dict,
    uri: str,
    *,
    train: bool = True,
):
    """One labelled set through validate -> augment -> pack [-> train] (the same components
    for the source and the target); returns the validate, pack and train (or None) tasks."""
    raw = dsl.importer(artifact_uri=uri, artifact_class=Dataset, reimport=False)
    common = {"params": params, "run_group": run_group, "item": item}
    v = on_cpu(c.validate(data_version=data_version, raw=raw.output, **common))
    a = on_cpu(c.augment(validated=v.outputs["validated"], **common))
    p = on_cpu(
        c.pack(
            splits=splits,
            validated=v.outputs["validated"],
            augmented=a.outputs["augmented"],
            **common,
        )
    )
    t = on_gpu(c.train(packed=p.outputs["packed"], **common)) if train else None
    return v, p, t


@dsl.pipeline(name="finish", description="finetune -> evaluate -> register")
def finish(
    params: dict,
    run_group: str,
    pretrained_item: str,
    pretrained: Input[Model],
    validated: Input[Dataset],
    packed: Input[Dataset],
    baseline: Input[Model] = None,
    suggest_uri: str = "",
) -> str:
    f = on_gpu(
        c.finetune(
            params=params,
            run_group=run_group,
            pretrained_item=pretrained_item,
            pretrained=pretrained,
            packed=packed,
        )
    )
    e = on_cpu(
        c.evaluate(
            params=params,
            run_group=run_group,
            item=TARGET,
            model=f.outputs["model"],
            baseline=baseline,
            validated=validated,
            packed=packed,
        )
    )
    r = on_cpu(
        c.register(
            params=params,
            run_group=run_group,
            model=f.outputs["model"],
            validated=validated,
            report=e.outputs["report"],
        )
    )
    with dsl.If(suggest_uri != "", name="suggest-what-to-label"):
        pool = dsl.importer(artifact_uri=suggest_uri, artifact_class=Dataset, reimport=True)
        on_cpu(
            c.suggest(
                params=params,
                run_group=run_group,
                model=f.outputs["model"],
                packed=packed,
                unlabelled=pool.output,
            )
        ).after(r)
    return r.outputs["Output"]


@dsl.pipeline(
    name="gbmseg",
    description="source (or the registry) -> pretrained U-Net -> fine-tuned on the target "
    "-> evaluated beside a scratch baseline -> registered",
)
def gbmseg_pipeline(
    source_uri: str,
    target_uri: str,
    data_version: str,
    pretrained: str = "",
    unlabelled_uri: str = "",
    suggest_uri: str = "",
    splits: dict = {},  # noqa: B006  (a KFP default, never mutated)
    params: dict = PARAMS,
) -> str:
    """``pretrained`` "" pretrains on the source set; "selfsup" pretrains on the images of
    ``unlabelled_uri`` without their masks; a registry URI (models:/NAME@ALIAS)
    fine-tunes that model instead.  ``splits``: the committed split files (set -> image ->
    split), so every image gets the split DVC gives it.  ``data_version`` (a content hash of
    the data, filled in by `gbmseg kfp submit`) keys the cache."""
    group = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    tv, tp, tt = prepare(params, group, data_version, TARGET, splits, target_uri, train=BASELINE)
    target = {
        "params": params,
        "run_group": group,
        "validated": tv.outputs["validated"],
        "packed": tp.outputs["packed"],
        "suggest_uri": suggest_uri,
    }
    if tt is not None:
        target["baseline"] = tt.outputs["model"]
    with dsl.If(pretrained == "", name="pretrain-on-source"):
        _, _, st = prepare(params, group, data_version, SOURCE, splits, source_uri)
        pretrain = finish(pretrained_item=SOURCE, pretrained=st.outputs["model"], **target)
    with dsl.Elif(pretrained == "selfsup", name="self-supervised"):
        raw = dsl.importer(artifact_uri=unlabelled_uri, artifact_class=Dataset, reimport=False)
        ss = on_gpu(
            c.selfsup(
                params=params,
                run_group=group,
                data_version=data_version,
                item=UNLABELLED,
                unlabelled=raw.output,
                packed=tp.outputs["packed"],
            )
        )
        own = finish(pretrained_item=UNLABELLED, pretrained=ss.outputs["model"], **target)
    with dsl.Else(name="from-registry"):
        r = on_cpu(c.resolve(params=params, run_group=group, ref=pretrained))
        registry = finish(pretrained_item="", pretrained=r.outputs["model"], **target)
    return dsl.OneOf(pretrain.output, own.output, registry.output)


def compile_pipeline(path: Path = COMPILED) -> Path:
    compiler.Compiler().compile(gbmseg_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
