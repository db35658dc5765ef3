"""Typed view of params.yaml: one pydantic model per section, unknown keys rejected.

``load(path, overrides)`` is the only place that reads params.yaml; steps receive the
section they need as a plain model.  Overrides use the ``dvc exp run -S`` syntax
(``section.key=value``, the value parsed as YAML).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from gbmseg.config.errors import ConfigError
from gbmseg.config.loop import ExportParams, SuggestParams
from gbmseg.config.params import Params, SetPaths, is_registry_ref
from gbmseg.config.sections import (
    AugmentParams,
    AutoParams,
    EvaluateParams,
    FinetuneParams,
    KfpParams,
    LabelledSet,
    MeasureParams,
    ModelParams,
    PackParams,
    PredictParams,
    RegisterParams,
    ResolveParams,
    SelfsupParams,
    SynthParams,
    TrackingParams,
    TrainParams,
    ValidateParams,
)

__all__ = [
    "AugmentParams",
    "AutoParams",
    "ConfigError",
    "EvaluateParams",
    "ExportParams",
    "FinetuneParams",
    "KfpParams",
    "LabelledSet",
    "MeasureParams",
    "ModelParams",
    "PackParams",
    "Params",
    "PredictParams",
    "RegisterParams",
    "ResolveParams",
    "SelfsupParams",
    "SetPaths",
    "SuggestParams",
    "SynthParams",
    "TrackingParams",
    "TrainParams",
    "ValidateParams",
    "apply_override",
    "is_registry_ref",
    "load",
    "load_tree",
    "validate_tree",
    "without_nulls",
]


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
    lines = []
    for e in err.errors():
        where = (
            ".".join(str(p) for p in e["loc"])
            .replace("validate_", "validate")
            .replace("register_", "register")
        )
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{where}' (check the spelling against params.yaml)")
        elif e["type"] == "missing":
            lines.append(f"missing key '{where}'")
        elif not where:
            lines.append(e["msg"].removeprefix("Value error, "))
        else:
            lines.append(f"'{where}': {e['msg']} (got {e.get('input')!r})")
    return f"{source}: invalid parameters: " + "; ".join(lines)


def load_tree(path: str | Path) -> dict:
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
    return tree


def without_nulls(tree):
    """The params tree without its null values (Kubeflow's parameter values cannot be null;
    a nullable parameter left out reads back as null)."""
    if isinstance(tree, dict):
        return {k: without_nulls(v) for k, v in tree.items() if v is not None}
    if isinstance(tree, list):
        return [without_nulls(v) for v in tree]
    return tree


def validate_tree(tree: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load(path: str | Path = "params.yaml", overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read params.yaml, apply overrides, validate; raise ConfigError naming bad keys."""
    tree = load_tree(path)
    for item in overrides:
        apply_override(tree, item)
    return validate_tree(tree, str(path))
