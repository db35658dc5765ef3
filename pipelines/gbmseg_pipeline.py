"""The gbmseg Kubeflow pipeline: the DVC DAG, task for task, with params.yaml as its default.

Resources, the GPU pool's node selector and tolerations, and the Secrets exposed as env
all come from params.yaml's ``kfp`` and ``train`` sections, read here at compile time.

Compile: ``python -m pipelines.gbmseg_pipeline`` (writes pipelines/gbmseg_pipeline.yaml).
"""

from pathlib import Path

import yaml
from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset

from components import gbmseg_components as c

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
KFP = PARAMS["kfp"]
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


@dsl.pipeline(
    name="gbmseg",
    description="validate -> augment -> pack -> train -> finetune, evaluate -> register",
)
def gbmseg_pipeline(raw_uri: str, data_version: str, params: dict = PARAMS) -> str:
    """``data_version`` (a content hash of ``raw_uri``, filled in by `gbmseg kfp submit`)
    keys the cache: changed data re-runs every task, unchanged data reuses them."""
    group = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    raw = dsl.importer(artifact_uri=raw_uri, artifact_class=Dataset, reimport=False)
    v = c.validate(params=params, run_group=group, data_version=data_version, raw=raw.output)
    a = c.augment(params=params, run_group=group, validated=v.outputs["validated"])
    p = c.pack(
        params=params,
        run_group=group,
        validated=v.outputs["validated"],
        augmented=a.outputs["augmented"],
    )
    t = c.train(params=params, run_group=group, packed=p.outputs["packed"])
    f = c.finetune(
        params=params, run_group=group, pretrained=t.outputs["model"], packed=p.outputs["packed"]
    )
    e = c.evaluate(
        params=params,
        run_group=group,
        model=t.outputs["model"],
        validated=v.outputs["validated"],
        packed=p.outputs["packed"],
    )
    r = c.register(
        params=params,
        run_group=group,
        model=t.outputs["model"],
        validated=v.outputs["validated"],
        report=e.outputs["report"],
    )
    for task in (v, a, p, e, r):
        on_cpu(task)
    for task in (t, f):
        on_gpu(task)
    return r.outputs["Output"]


def compile_pipeline(path: Path = COMPILED) -> Path:
    compiler.Compiler().compile(gbmseg_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
