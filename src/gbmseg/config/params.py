"""The whole params.yaml as one model, and the paths every set's outputs live under."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import ConfigDict, Field, model_validator

from gbmseg.config.errors import ConfigError
from gbmseg.config.loop import ExportParams, SuggestParams
from gbmseg.config.sections import (
    AugmentParams,
    EvaluateParams,
    FinetuneParams,
    KfpParams,
    LabelledSet,
    MeasureParams,
    PackParams,
    PredictParams,
    RegisterParams,
    ResolveParams,
    Section,
    SelfsupParams,
    SynthParams,
    TrackingParams,
    TrainParams,
    ValidateParams,
)

OUTPUT_PATHS = {  # section -> the keys naming where a stage writes (or reads another's output)
    "validate": ("out",), "augment": ("out",), "pack": ("out", "splits"),
    "train": ("out", "metrics", "history", "checkpoints"), "selfsup": ("metrics", "history"),
    "resolve": ("out",), "finetune": ("pretrained", "out", "metrics", "history"),
    "evaluate": ("model", "baseline", "out", "metrics"), "register": ("out",),
    "predict": ("out",), "measure": ("out",), "suggest": ("out",), "export": ("out",),
}  # fmt: skip
_ALIASED = ("validate", "register")  # names that clash with BaseModel attributes
REGISTRY_SCHEMES = ("models:/", "runs:/")


def is_registry_ref(ref: str) -> bool:
    return ref.startswith(REGISTRY_SCHEMES)


@dataclass(frozen=True)
class SetPaths:
    """Where one labelled set's outputs go, derived from the section bases."""

    validated: Path
    augmented: Path
    packed: Path
    split_file: Path
    model: Path
    metrics: Path
    history: Path
    checkpoints: Path


class Params(Section):
    sets: dict[str, LabelledSet] = Field(min_length=1)
    tracking: TrackingParams
    synth: SynthParams
    validate_: ValidateParams = Field(alias="validate")
    augment: AugmentParams
    pack: PackParams
    train: TrainParams
    selfsup: SelfsupParams
    resolve: ResolveParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    register_: RegisterParams = Field(alias="register")
    predict: PredictParams
    measure: MeasureParams
    suggest: SuggestParams
    export: ExportParams
    kfp: KfpParams

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _target_is_a_set(self) -> Params:
        if self.finetune.target not in self.sets:
            raise ValueError(
                f"finetune.target {self.finetune.target!r} is not one of sets: "
                f"{sorted(self.sets)}; add it under `sets` or name an existing set"
            )
        return self

    @model_validator(mode="after")
    def _unlabelled_names_are_free(self) -> Params:
        clash = sorted(set(self.selfsup.unlabelled) & set(self.sets))
        if clash:
            raise ValueError(
                f"selfsup.unlabelled {clash} also name labelled sets; both would write "
                f"{self.train.out}/<name>: rename the unlabelled folder's key"
            )
        step = math.lcm(self.selfsup.patch, 2**self.train.model.depth)
        if self.selfsup.tile % step:
            raise ValueError(
                f"selfsup.tile {self.selfsup.tile} must be a multiple of selfsup.patch and of "
                f"2**train.model.depth (so of {step}); try {step * max(1, 128 // step)}"
            )
        return self

    def section(self, name: str) -> Section:
        return getattr(self, f"{name}_" if name in _ALIASED else name)

    def labelled(self, name: str) -> LabelledSet:
        """The set ``name``; ConfigError saying what to type instead (a folder where a set
        name goes is the usual slip)."""
        if name in self.sets:
            return self.sets[name]
        known = ", ".join(sorted(self.sets))
        hint = "name one of them"
        if "/" in name or Path(name).exists():
            hint = (
                f"a folder goes in params.yaml `sets.<name>.raw`, or on the command line as "
                f"`gbmseg validate {self.finetune.target} --raw {name}`"
            )
        raise ConfigError(f"{name!r} is not a set in params.yaml `sets` (known: {known}); {hint}")

    def unlabelled(self, name: str) -> str:
        """The folder of unlabelled images ``name``; ConfigError listing the known ones."""
        if name in self.selfsup.unlabelled:
            return self.selfsup.unlabelled[name]
        known = ", ".join(sorted(self.selfsup.unlabelled)) or "none"
        raise ConfigError(
            f"{name!r} is not named under selfsup.unlabelled (known: {known}); add "
            f"`{name}: /path/to/images` there, or name a known one"
        )

    def paths(self, name: str) -> SetPaths:
        """The folders and files of set ``name`` (a key of ``sets``)."""
        self.labelled(name)
        t = self.train
        return SetPaths(
            validated=Path(self.validate_.out) / name,
            augmented=Path(self.augment.out) / name,
            packed=Path(self.pack.out) / name,
            split_file=Path(self.pack.splits) / f"{name}.csv",
            model=Path(t.out) / name,
            metrics=Path(t.metrics) / f"{name}.json",
            history=Path(t.history) / f"{name}.csv",
            checkpoints=Path(t.checkpoints) / f"train-{name}",
        )

    def rooted(self, work: str | Path, raw: bool = False) -> Params:
        """The same parameters with every output path (and with ``raw`` every set's folder)
        under ``work``, in the layout params.yaml gives them: one owner of that layout for
        studies and tests that run the pipeline in a folder of their own."""
        tree = self.model_dump(mode="json", by_alias=True)

        def under(value: str) -> str:
            return value if not value or is_registry_ref(value) else str(Path(work) / value)

        for section, keys in OUTPUT_PATHS.items():
            for key in keys:
                tree[section][key] = under(tree[section][key])
        if raw:
            for s in tree["sets"].values():
                s["raw"] = under(s["raw"])
        return Params.model_validate(tree)

    @property
    def target(self) -> LabelledSet:
        return self.sets[self.finetune.target]

    @property
    def target_positive(self) -> str:
        """Mask polarity of the lab's images (predict writes, measure reads, this colour)."""
        pos = self.target.positive
        return pos if isinstance(pos, str) else next(iter(pos.values()))

    def _trained_here(self, ref: str) -> str | None:
        """The name under train.out that the model reference ``ref`` is, if it is one."""
        if not ref or is_registry_ref(ref) or Path(ref).parent != Path(self.train.out):
            return None
        return Path(ref).name

    def pretrained_set(self) -> str | None:
        """The set whose from-scratch model ``finetune.pretrained`` names, if any."""
        return self._trained_here(self.finetune.pretrained)

    def baseline_set(self) -> str | None:
        """The set whose from-scratch model ``evaluate.baseline`` names, if any."""
        return self._trained_here(self.evaluate.baseline)

    def pretrained_unlabelled(self) -> str | None:
        """The unlabelled folder whose self-supervised model ``finetune.pretrained`` names."""
        name = self.pretrained_set()
        return name if name in self.selfsup.unlabelled else None

    def unused_sets(self) -> list[str]:
        """Sets that nothing downstream uses: neither the target nor the pretraining set."""
        used = {self.finetune.target, self.pretrained_set()}
        return sorted(set(self.sets) - used)

    def selfsup_paths(self, name: str) -> tuple[Path, Path, Path]:
        """(model folder, metrics JSON, loss-curve CSV) of unlabelled folder ``name``."""
        self.unlabelled(name)
        s = self.selfsup
        return (
            Path(self.train.out) / name,
            Path(s.metrics) / f"{name}.json",
            Path(s.history) / f"{name}.csv",
        )

    def train_params(self, name: str) -> TrainParams:
        """The train section with set ``name``'s paths; the target trained from scratch (only
        ever as the baseline: `stages.check_trained`) trains for ``train.baseline_epochs``."""
        sp = self.paths(name)
        update = {"out": str(sp.model), "metrics": str(sp.metrics), "history": str(sp.history)}
        update["checkpoints"] = str(sp.checkpoints)
        if name == self.finetune.target:
            update["epochs"] = self.train.baseline_epochs
        return self.train.model_copy(update=update)

    def finetune_train_params(self) -> TrainParams:
        """Fine-tuning = training plus the finetune section's overrides (nanoGPT's rule)."""
        f = self.finetune
        return self.train.model_copy(
            update={
                "out": f.out,
                "metrics": f.metrics,
                "history": f.history,
                "checkpoints": str(Path(self.train.checkpoints) / "finetune"),
                "epochs": f.epochs,
                "lr": f.lr,
            }
        )

    def digest(self) -> str:
        """Stable hash of the effective configuration."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
