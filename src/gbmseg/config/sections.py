"""One pydantic model per params.yaml section (and sub-section); unknown keys are rejected."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Probability = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Range = tuple[float, float]
Colour = Literal["black", "white"]
Strategy = Literal["head", "decoder", "shallow", "full"]


class LabelledSet(Section):
    raw: str = Field(description="images/ + masks/ (or labelme JSON); <raw>/test/ = test only")
    positive: Colour | dict[str, Colour] = Field(
        description="structure colour in the masks; per sub-folder for a folder of sets"
    )
    pixel_size_nm: float | None = Field(
        default=None, gt=0, description="nm per pixel of every image (null: each file's own)"
    )


class TrackingParams(Section):
    uri: str = Field(description="empty: sqlite database + artifacts inside the project")
    experiment: str
    model_name: str


class SynthParams(Section):
    seed: int
    source_images: int = Field(ge=0, description="source-domain pairs (pretraining set)")
    target_images: int = Field(ge=1, description="target-domain pairs the lab labelled")
    target_test_images: int = Field(ge=0, description="target pairs in <target>/test/")
    size: int = Field(ge=32)
    pixel_size_nm: float = Field(gt=0)
    thickness_nm: Range
    n_blobs: tuple[int, int]
    noise_std: float = Field(ge=0)


class ValidateParams(Section):
    out: str = Field(description="base folder: <out>/<set>/")
    min_images: int = Field(ge=1)
    positive_fraction: Range
    labels: list[str]
    require_pixel_size: bool = Field(
        description="every image must carry a calibration (or the set its pixel_size_nm)"
    )


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


class Elastic(Transform):
    alpha: float = Field(ge=0, description="displacement scale (pixels)")
    sigma: float = Field(gt=0, description="smoothness of the displacement field (pixels)")


class AugmentParams(Section):
    out: str = Field(description="base folder: <out>/<set>/")
    copies: int = Field(ge=0)
    seed: int
    color_jitter: ColorJitter
    rotate: Rotate
    shear: Shear
    random_crop: RandomCrop
    hflip: Transform
    stretch: Stretch
    lens: Lens
    elastic: Elastic


class PackParams(Section):
    out: str = Field(description="base folder: <out>/<set>/")
    splits: str = Field(description="folder of the committed split files <splits>/<set>.csv")
    tile: int = Field(ge=16)
    stride: int = Field(ge=1)
    val_fraction: float = Field(ge=0, lt=1)
    test_fraction: float = Field(ge=0, lt=1)
    scale_nm: float | None = Field(
        default=None,
        gt=0,
        description="resample every image to this pixel size (null: as they come)",
    )

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
    sets: list[str] = Field(
        description="sets trained from scratch: finetune.pretrained's and evaluate.baseline's"
    )
    out: str = Field(description="base folder: <out>/<set>/model.pt")
    metrics: str = Field(description="base folder: <metrics>/<set>.json")
    history: str = Field(description="base folder: <history>/<set>.csv")
    checkpoints: str = Field(description="last.pt/best.pt while training, for --resume")
    model: ModelParams
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "fp32", "bf16", "fp16"]
    channels_last: bool
    compile: bool = Field(description="torch.compile the model (CUDA)")
    epochs: int = Field(ge=1)
    baseline_epochs: int = Field(
        ge=1, description="epochs of the target trained from scratch (the baseline)"
    )
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
    pos_weight: float = Field(gt=0, description="BCE weight of structure pixels vs background")
    skeleton_recall_weight: float = Field(
        ge=0, description="skeleton recall loss (Kirchhoff et al. 2024) weight; 0: off"
    )
    boundary_weight: float = Field(
        ge=0, description="boundary loss (signed distance to the label's edge) weight; 0: off"
    )
    foreground_oversample: float = Field(
        ge=0, description="tiles showing structure drawn 1 + this times as often (0: uniform)"
    )
    threads: int = Field(
        ge=0, description="CPU threads; 0: the cores other processes leave, re-checked as it runs"
    )
    steps_per_epoch: int = Field(
        ge=0,
        description="optimiser steps per epoch, random crops of whole images (0: every tile once)",
    )
    patience: int = Field(ge=1)
    select: Literal["dice", "dice_thickness"] = Field(
        description="the epoch kept and early stopping: validation Dice, or Dice minus the mean "
        "|relative thickness difference| on the validation tiles"
    )
    holdout: float = Field(
        ge=0, lt=0.5,
        description="no validation images: this fraction of each training image (a strip along "
        "its bottom edge) is held out to validate on, if it holds min_membrane_px (0: never)",
    )  # fmt: skip
    threshold: Probability | Literal["auto"] = Field(
        description="the model's threshold on its probabilities, recorded with it; auto: chosen "
        "on the validation tiles so that the drawn membrane is as thick as the labelled one"
    )
    threshold_dice_tolerance: float = Field(
        ge=0, lt=1, description="auto: thresholds within this of the best validation Dice qualify"
    )
    min_membrane_px: int = Field(
        ge=0,
        description="labelled mid-line (px) the validation tiles must hold for a threshold to "
        "be chosen on them, and held-out strips to be kept out of training",
    )
    max_minutes: float = Field(ge=0, description="0: no time budget")
    seed: int
    augment_online: bool = Field(description="apply the augment section's transforms per batch")
    gpus: int = Field(ge=1, description="GPUs per Kubeflow train task; > 1 runs under torchrun")


class AutoParams(Section):
    large_megapixels: float = Field(
        gt=0, description="labelled target pixels (not images) making a set large"
    )
    feature_distance: float = Field(
        gt=0, description="BatchNorm-statistics shift: above = different"
    )
    histogram_distance: float = Field(gt=0, description="intensity JS distance: above = different")
    similar_small: Strategy
    different_small: Strategy
    similar_large: Strategy
    different_large: Strategy
    self_supervised: Strategy = Field(
        description="the strategy when the pretrained model learnt from unlabelled images only"
    )


class FinetuneParams(Section):
    target: str = Field(description="the set fine-tuned on and tested on (a key of `sets`)")
    pretrained: str = Field(
        description="models/train/<set> (pretrained here), a model folder, or models:/NAME@ALIAS"
    )
    out: str
    metrics: str
    history: str
    strategy: Literal["head", "decoder", "shallow", "full", "auto"]
    shallow_levels: int = Field(ge=1)
    encoder_lr_scale: float = Field(gt=0, le=1, description="lr factor of trainable encoder levels")
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    auto: AutoParams


class SelfsupParams(Section):
    unlabelled: dict[str, str] = Field(
        description="NAME: folder of images without masks -> model <train.out>/NAME ({} = none)"
    )
    metrics: str = Field(description="base folder: <metrics>/<name>.json")
    history: str = Field(description="base folder: <history>/<name>.csv (loss curve)")
    steps: int = Field(ge=1, description="optimiser steps of batch_size random crops")
    batch_size: int = Field(ge=1)
    tile: int = Field(ge=32, description="crop size (a multiple of patch and of 2**depth)")
    lr: float = Field(gt=0)
    mask_ratio: float = Field(gt=0, lt=1, description="fraction of patch x patch squares hidden")
    patch: int = Field(ge=2)
    noise: float = Field(ge=0, description="Gaussian noise std added to every input (0-1 scale)")
    seed: int


class ResolveParams(Section):
    out: str = Field(description="the starting model of finetune, as a local folder")


class EvaluateParams(Section):
    model: str = Field(description="the model scored on the target's test images")
    baseline: str = Field(description="scored beside it on the same images ('' = none)")
    out: str
    metrics: str
    threshold: Probability | Literal["model"] = Field(
        description="model: the threshold recorded with the model (0.5 where none is)"
    )
    tta: bool = Field(description="flip test-time augmentation (4x compute)")
    resample: bool = Field(description="bring each image to the model's pixel size and back")
    tile: int = Field(ge=16)
    overlap: float = Field(ge=0, lt=1)
    max_overlays: int = Field(ge=0)


class PredictParams(Section):
    out: str
    tile: int = Field(ge=16)
    overlap: float = Field(ge=0, lt=1)
    batch: int = Field(ge=1)
    threshold: Probability | Literal["model"] = Field(
        description="model: the threshold recorded with the model (0.5 where none is)"
    )
    tta: bool
    probabilities: bool
    labelme: bool = Field(description="also write NAME.json labelme polygons")
    resample: bool = Field(description="bring each image to the model's pixel size and back")
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "fp32", "bf16", "fp16"]


Sex = Literal["male", "female", "unknown"]
SexRanges = dict[Literal["male", "female"], list[float]]


class Adequacy(Section):
    intercepts: int = Field(ge=0, description="orthogonal intercepts a biopsy figure needs")
    loops: int = Field(ge=0, description="capillary loops the Haas figure needs")
    images: int = Field(ge=0, description="images a biopsy figure needs")


class Reference(Section):
    sex: Sex = Field(description="whose normal range applies (a biopsy table's sex column wins)")
    haas: SexRanges = Field(description="[low, high] nm per sex for the Haas mean; {} = none")
    harmonic: SexRanges = Field(description="the same for the harmonic mean")
    corrected: SexRanges = Field(description="the same for the 8/3pi-corrected harmonic mean")

    @model_validator(mode="after")
    def _pairs(self) -> Reference:
        for method in ("haas", "harmonic", "corrected"):
            for sex, r in getattr(self, method).items():
                if r and (len(r) != 2 or r[0] >= r[1]):
                    raise ValueError(f"reference.{method}.{sex} takes [low, high] or []")
        return self


class MeasureParams(Section):
    out: str
    pixel_size_nm: float | None = Field(
        default=None,
        gt=0,
        description="nm per pixel for every mask (null: each file's own calibration)",
    )
    min_length_px: int = Field(ge=1, description="skeleton pieces shorter than this are ignored")
    trim_px: int = Field(ge=0, description="skeleton pixels dropped at each end (end effects)")
    grid_spacing_nm: float = Field(gt=0, description="orthogonal-intercept grid spacing")
    oblique_ratio: float = Field(gt=1, description="wider than this x its surroundings: oblique")
    oblique_window_nm: float = Field(gt=0, description="radius of those surroundings")
    haas_loops: int = Field(ge=1, description="capillary loops drawn at random (Haas method)")
    haas_points: int = Field(ge=1, description="points drawn at random on each loop")
    thin_below_nm: float = Field(gt=0, description="membrane thinner than this counts as thin")
    seed: int
    adequacy: Adequacy
    reference: Reference
    biopsy_pattern: str = Field(description="regex with a (?P<biopsy>...) group on the name")
    biopsies: str = Field(description="CSV image,biopsy[,sex] (overrides the pattern); '' = none")

    @model_validator(mode="after")
    def _pattern(self) -> MeasureParams:
        import re

        if "(?P<biopsy>" not in self.biopsy_pattern:
            raise ValueError("biopsy_pattern needs a named group (?P<biopsy>...)")
        re.compile(self.biopsy_pattern)
        return self


class RegisterParams(Section):
    out: str
    min_delta: float = Field(ge=0, description="Dice gain the challenger must show")
    confidence: float = Field(gt=0.5, lt=1)
    bootstrap: int = Field(ge=100)
    seed: int
    min_test_images: int = Field(
        ge=1, description="fewer usable test images: registered, but the champion stays"
    )
    replace_broken_champion: bool = Field(
        description="promote over a champion that cannot be loaded (default: keep it)"
    )
    thickness_tolerance: float = Field(
        ge=0,
        description="the largest rise in mean |relative thickness difference| vs the labels "
        "a better-Dice challenger may show and still be promoted",
    )
    lock: str = Field(description="'' = derived from a local store; postgresql:// URI or path")


class GpuPool(Section):
    accelerator: str = Field(description="resource name, e.g. nvidia.com/gpu")
    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]


class KfpParams(Section):
    host: str = Field(description="KFP API endpoint; '' = in-cluster / KF_PIPELINES_ENDPOINT")
    namespace: str
    experiment: str
    source_uri: str = Field(description="where the pipeline imports the source set (s3://...)")
    target_uri: str = Field(description="where the pipeline imports the target set (s3://...)")
    unlabelled_uri: str = Field(
        description="where it imports the unlabelled images when finetune starts from selfsup"
    )
    suggest_uri: str = Field(
        description="unlabelled images each run ends by ranking (`suggest`); '' = none"
    )
    cron: str = Field(description="6-field cron (seconds first) of `gbmseg kfp schedule`")
    max_concurrency: int = Field(ge=1)
    gpu_pool: GpuPool
    secrets: dict[str, list[str]] = Field(description="Secret name -> keys exposed as env")
    cpu_request: str
    memory_request: str
