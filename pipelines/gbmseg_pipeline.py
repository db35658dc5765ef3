"""The gbmseg Kubeflow pipeline: the DVC DAG, task for task, with params.yaml as its default.

Compile: ``python -m pipelines.gbmseg_pipeline`` (writes pipelines/gbmseg_pipeline.yaml).
"""

from pathlib import Path

import yaml
from kfp import compiler, dsl
from kfp.dsl import Dataset

from components import gbmseg_components as c

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
COMPILED = Path(__file__).with_suffix(".yaml")


@dsl.pipeline(
    name="gbmseg", description="validate -> augment -> pack -> train -> evaluate -> register"
)
def gbmseg_pipeline(raw_uri: str, params: dict = PARAMS) -> str:
    group = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    raw = dsl.importer(artifact_uri=raw_uri, artifact_class=Dataset, reimport=False)
    v = c.validate(params=params, run_group=group, raw=raw.output)
    a = c.augment(params=params, run_group=group, validated=v.outputs["validated"])
    p = c.pack(
        params=params,
        run_group=group,
        validated=v.outputs["validated"],
        augmented=a.outputs["augmented"],
    )
    t = c.train(params=params, run_group=group, packed=p.outputs["packed"])
    t.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    t.set_cpu_request("4").set_memory_request("16G")
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
        task.set_cpu_request("1").set_memory_request("4G")
    return r.outputs["Output"]


def compile_pipeline(path: Path = COMPILED) -> Path:
    compiler.Compiler().compile(gbmseg_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
