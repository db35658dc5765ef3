"""The original recipe's seven augmentations as one albumentations pipeline.

The same definition serves the offline ``augment`` stage and on-the-fly training.
Masks use nearest-neighbour interpolation and reflected borders, so they stay binary
and aligned with their image.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import

import albumentations as A
import cv2

from gbmseg.config import AugmentParams

BORDER = cv2.BORDER_REFLECT_101
NEAREST = cv2.INTER_NEAREST


def transforms(p: AugmentParams, size: tuple[int, int]) -> list[A.BasicTransform]:
    """The seven transforms, in recipe order; ``size`` is the (height, width) to keep."""
    cj = p.color_jitter
    return [
        A.Sequential(
            [
                A.RandomBrightnessContrast(
                    brightness_limit=cj.brightness, contrast_limit=cj.contrast, p=1.0
                ),
                A.RandomGamma(gamma_limit=cj.gamma, p=1.0),
            ],
            p=cj.p,
        ),
        A.Rotate(
            limit=p.rotate.limit, border_mode=BORDER, mask_interpolation=NEAREST, p=p.rotate.p
        ),
        A.Affine(
            shear=(-p.shear.limit, p.shear.limit),
            border_mode=BORDER,
            mask_interpolation=NEAREST,
            p=p.shear.p,
        ),
        A.RandomResizedCrop(
            size=size, scale=p.random_crop.scale, mask_interpolation=NEAREST, p=p.random_crop.p
        ),
        A.HorizontalFlip(p=p.hflip.p),
        A.Affine(
            scale={"x": p.stretch.scale, "y": (1.0, 1.0)},
            border_mode=BORDER,
            mask_interpolation=NEAREST,
            p=p.stretch.p,
        ),
        A.OpticalDistortion(
            distort_limit=p.lens.distort_limit,
            border_mode=BORDER,
            mask_interpolation=NEAREST,
            p=p.lens.p,
        ),
    ]


def elastic(p: AugmentParams) -> list[A.BasicTransform]:
    """The U-Net paper's elastic deformation, beside the recipe's seven (when ``p`` > 0)."""
    e = p.elastic
    if e.p <= 0:
        return []
    return [
        A.ElasticTransform(
            alpha=e.alpha, sigma=e.sigma, border_mode=BORDER, mask_interpolation=NEAREST, p=e.p
        )
    ]


def build(p: AugmentParams, size: tuple[int, int], seed: int | None = None) -> A.Compose:
    return A.Compose(transforms(p, size) + elastic(p), seed=seed)


def to_dict(pipeline: A.Compose) -> dict:
    return A.to_dict(pipeline)


def from_dict(d: dict) -> A.Compose:
    return A.from_dict(d)
