"""Loss terms for thin structures and their edges (both off by default; see train.*_weight).

* Skeleton recall (Kirchhoff et al., "Skeleton Recall Loss for Connectivity Conserving and
  Resource Efficient Segmentation of Thin Tubular Structures", ECCV 2024; nnU-Net's
  implementation): 1 - the soft recall of the label's *tubed* skeleton (its mid-line dilated
  by one pixel, within the label), so a thin membrane is not broken or lost.
* Boundary (after Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL
  2019): the mean of the probabilities times the label's signed distance to its edge (px,
  negative inside, positive outside), clipped to +-``CLIP`` px and scaled to [-1, 1]: every
  probability outside the membrane costs in proportion to how far out it is, every one inside
  gains; a rim of false positives along both edges is what it acts on.

Both are computed from the labels of the batch on the CPU (scikit-image / SciPy): the crops
change every step.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.morphology import skeletonize

CLIP = 5.0  # px


def tubed_skeletons(target: torch.Tensor) -> torch.Tensor:
    """The mid-line of each (N, 1, H, W) label, dilated by one pixel (a 3 x 3 cross) and kept
    inside the label."""
    masks = target.detach().cpu().numpy()[:, 0] > 0.5
    cross = ndimage.generate_binary_structure(2, 1)
    tubes = [
        ndimage.binary_dilation(skeletonize(m), cross) & m if m.any() else np.zeros_like(m)
        for m in masks
    ]
    return torch.from_numpy(np.stack(tubes)[:, None].astype(np.float32)).to(target.device)


def skeleton_recall(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft recall of the labels' tubed skeletons (tiles without structure left out)."""
    tube = tubed_skeletons(target)
    total = tube.sum(dim=(1, 2, 3))
    has = total > 0
    if not bool(has.any()):
        return prob.sum() * 0.0
    recall = (prob * tube).sum(dim=(1, 2, 3))[has] / total[has]
    return 1.0 - recall.mean()


def signed_distances(target: torch.Tensor) -> torch.Tensor:
    """Each label's signed distance to its edge (px, negative inside), clipped to +-CLIP and
    divided by CLIP; 0 for a label with no structure (or nothing but structure)."""
    masks = target.detach().cpu().numpy()[:, 0] > 0.5
    out = np.zeros(masks.shape, np.float32)
    for i, m in enumerate(masks):
        if m.any() and not m.all():
            d = ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m)
            out[i] = np.clip(d, -CLIP, CLIP) / CLIP
    return torch.from_numpy(out[:, None]).to(target.device)


def boundary(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of probability x scaled signed distance (see the module docstring)."""
    return (prob * signed_distances(target)).mean()
