"""The sections of the lab's loop around a model: what to label next, and sharing it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gbmseg.config.sections import Section


class SuggestParams(Section):
    out: str = Field(description="the drafts to correct: images + labelme JSON, ranked.csv")
    images: str = Field(description="folder of unlabelled images to rank (--images DIR)")
    top: int = Field(ge=1, description="images proposed")
    score: Literal["disagreement", "entropy", "random"] = Field(
        description="disagreement: flip views disagree; entropy: mean entropy near the "
        "predicted membrane; random: a seeded draw (the baseline)"
    )
    band_px: int = Field(ge=0, description="'near the membrane': this many px around it")
    tile: int = Field(ge=16)
    overlap: float = Field(ge=0, lt=1)
    batch: int = Field(ge=1)
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "fp32", "bf16", "fp16"]


class ExportParams(Section):
    out: str = Field(description="folder for NAME/ (package), NAME.zip, NAME.onnx, export.json")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="file stem")
    description: str
    authors: list[str] = Field(min_length=1)
    license: str = Field(description="SPDX identifier of the weights' licence")
    sample: str = Field(
        description="image whose central tile is the test input ('' = the target's first image)"
    )
    tile: int = Field(ge=16, description="test input size (px, a multiple of 2**depth)")
    opset: int = Field(ge=13, le=21, description="ONNX opset")
    tolerance: float = Field(gt=0, description="max abs difference ONNX Runtime vs PyTorch")
    check: bool = Field(description="run bioimageio.core's model test on the package")
