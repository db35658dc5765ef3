"""Typed view of params.yaml: one pydantic model per section, unknown keys rejected.

``load(path, overrides)`` is the only place that reads params.yaml; steps receive the
section they need as a plain model.  Overrides use the ``dvc exp run -S`` syntax
(``section.key=value``, the value parsed as YAML).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """params.yaml (or an override) is missing, malformed or names an unknown key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Range = tuple[float, float]


class DataParams(Section):
    raw: str
    positive: Literal["black", "white"]


class TrackingParams(Section):
    uri: str = Field(description="empty: sqlite database + artifacts inside the project")
    experiment: str
    model_name: str


class SynthParams(Section):
    seed: int
    n_images: int = Field(ge=1)
    size: int = Field(ge=32)
    pixel_size_nm: float = Field(gt=0)
    thickness_nm: Range
    n_blobs: tuple[int, int]
    noise_std: float = Field(ge=0)
    domain: Literal["target", "source"]


class ValidateParams(Section):
    out: str
    min_images: int = Field(ge=1)
    positive_fraction: Range
    labels: list[str]


class Transform(Section):
    p: float = Field(ge=0, le=1)


class ColorJitter(Transform):
    brightness: float
    contrast: float
    gamma: Range


class Rotate(Transform):
    limit: float


class Shear(Transform):
    limit: float


class RandomCrop(Transform):
    scale: Range


class Stretch(Transform):
    scale: Range


class Lens(Transform):
    distort_limit: float


class AugmentParams(Section):
    out: str
    copies: int = Field(ge=0)
    seed: int
    color_jitter: ColorJitter
    rotate: Rotate
    shear: Shear
    random_crop: RandomCrop
    hflip: Transform
    stretch: Stretch
    lens: Lens


class PackParams(Section):
    out: str
    tile: int = Field(ge=16)
    stride: int = Field(ge=1)
    val_fraction: float = Field(ge=0, lt=1)
    test_fraction: float = Field(ge=0, lt=1)
    seed: int

    @model_validator(mode="after")
    def _fractions(self) -> PackParams:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self


class ModelParams(Section):
    depth: int = Field(ge=1, le=6)
    base: int = Field(ge=1)
    norm: Literal["batch", "group", "none"]
    dropout: float = Field(ge=0, lt=1)
    up: Literal["transpose", "bilinear"]


class TrainParams(Section):
    out: str
    metrics: str
    history: str
    model: ModelParams
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "fp32", "bf16", "fp16"]
    channels_last: bool
    compile: bool = Field(description="torch.compile the model (CUDA)")
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: Literal["adamw", "sgd"]
    schedule: Literal["cosine", "poly"]
    momentum: float = Field(ge=0, lt=1, description="SGD only")
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_epochs: float = Field(ge=0)
    grad_clip: float = Field(ge=0)
    bce_weight: float = Field(ge=0)
    dice_weight: float = Field(ge=0)
    patience: int = Field(ge=1)
    max_minutes: float = Field(ge=0, description="0: no time budget")
    seed: int
    num_workers: int = Field(ge=0)
    augment_online: bool = Field(description="apply the augment section's transforms per batch")
    gpus: int = Field(ge=1, description="GPUs per Kubeflow train task; > 1 runs under torchrun")


class AutoParams(Section):
    large_megapixels: float = Field(gt=0, description="labelled target pixels making a set large")
    feature_distance: float = Field(
        gt=0, description="BatchNorm-statistics shift: above = different"
    )
    histogram_distance: float = Field(gt=0, description="intensity JS distance: above = different")
    similar_small: Literal["head", "decoder", "shallow", "full"]
    different_small: Literal["head", "decoder", "shallow", "full"]
    similar_large: Literal["head", "decoder", "shallow", "full"]
    different_large: Literal["head", "decoder", "shallow", "full"]


class FinetuneParams(Section):
    out: str
    metrics: str
    history: str
    pretrained: str = Field(description="model folder, model.pt or models:/NAME@ALIAS")
    strategy: Literal["head", "decoder", "shallow", "full", "auto"]
    shallow_levels: int = Field(ge=1)
    encoder_lr_scale: float = Field(gt=0, le=1, description="lr factor of trainable encoder levels")
    out_channels: int = Field(
        ge=1, description="a pretrained head of another size is re-initialised"
    )
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    auto: AutoParams


class EvaluateParams(Section):
    out: str
    metrics: str
    threshold: float = Field(gt=0, lt=1)
    tile: int = Field(ge=16)
    overlap: float = Field(ge=0, lt=1)
    max_overlays: int = Field(ge=0)


class PredictParams(Section):
    out: str
    tile: int = Field(ge=16)
    overlap: float = Field(ge=0, lt=1)
    batch: int = Field(ge=1)
    threshold: float = Field(gt=0, lt=1)
    tta: bool
    probabilities: bool
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "fp32", "bf16", "fp16"]


class MeasureParams(Section):
    out: str
    pixel_size_nm: float = Field(gt=0, description="used when the image carries none")
    min_length_px: int = Field(ge=1, description="skeleton pieces shorter than this are ignored")
    trim_px: int = Field(ge=0, description="skeleton pixels dropped at each end (end effects)")


class RegisterParams(Section):
    out: str
    min_delta: float = Field(ge=0, description="Dice gain the challenger must show")
    confidence: float = Field(gt=0.5, lt=1)
    bootstrap: int = Field(ge=100)
    seed: int
    lock: str = Field(description="'' = derived from a local store; postgresql:// URI or path")


class GpuPool(Section):
    accelerator: str = Field(description="resource name, e.g. nvidia.com/gpu")
    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]


class KfpParams(Section):
    host: str = Field(description="KFP API endpoint; '' = in-cluster / KF_PIPELINES_ENDPOINT")
    namespace: str
    experiment: str
    raw_uri: str = Field(description="where the pipeline imports data.raw from (s3://...)")
    cron: str = Field(description="6-field cron (seconds first) of `gbmseg kfp schedule`")
    max_concurrency: int = Field(ge=1)
    gpu_pool: GpuPool
    secrets: dict[str, list[str]] = Field(description="Secret name -> keys exposed as env")
    cpu_request: str
    memory_request: str


_ALIASED = ("validate", "register")  # names that clash with BaseModel attributes


class Params(Section):
    data: DataParams
    tracking: TrackingParams
    synth: SynthParams
    validate_: ValidateParams = Field(alias="validate")
    augment: AugmentParams
    pack: PackParams
    train: TrainParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    register_: RegisterParams = Field(alias="register")
    predict: PredictParams
    measure: MeasureParams
    kfp: KfpParams

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def section(self, name: str) -> Section:
        return getattr(self, f"{name}_" if name in _ALIASED else name)

    def digest(self) -> str:
        """Stable hash of the effective configuration."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def apply_override(tree: dict, override: str) -> None:
    """Apply one ``a.b.c=value`` override (value parsed as YAML) to a nested dict."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} is not of the form section.key=value")
    parts = key.strip().split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(raw)


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters"]
    for e in err.errors():
        where = (
            ".".join(str(p) for p in e["loc"])
            .replace("validate_", "validate")
            .replace("register_", "register")
        )
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{where}' (check the spelling against params.yaml)")
        elif e["type"] == "missing":
            lines.append(f"  - missing key '{where}'")
        else:
            lines.append(f"  - '{where}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load(path: str | Path = "params.yaml", overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read params.yaml, apply overrides, validate; raise ConfigError naming bad keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such parameters file (run from the project root, or pass --params)"
        )
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for item in overrides:
        apply_override(tree, item)
    try:
        return Params.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path))) from None
