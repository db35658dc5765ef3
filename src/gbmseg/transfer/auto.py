"""``finetune.strategy: auto``: the recipe's 4-quadrant rule, decided from measurements.

size       = labelled target pixels vs ``auto.large_megapixels`` (pixels, not images:
             ``benchmarks/size_axis.py`` measured equal pixels in 1 or 4 images alike).
similarity = two distances between the source the model was trained on and the target:
  * feature distance: each BatchNorm layer of the pretrained encoder holds the source's
    per-channel activation mean and variance (its running statistics); the target's tiles
    are passed through the frozen encoder and the 1-D Wasserstein-2 distance between the
    two Gaussians, in units of the source variance, is averaged over channels and layers.
    It needs no source data, only the model: ~0 for source-like images, large when the
    encoder sees features it was not trained on.
  * histogram distance: Jensen-Shannon distance (base 2, in [0, 1]) between the source's
    intensity histogram (stored in model.pt by the train step) and the target's.
The target is *different* when either distance exceeds its threshold.  The thresholds are
calibrated by ``benchmarks/transfer.py`` (held-out source images vs other EM domains).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from gbmseg.config import AutoParams
from gbmseg.data.stats import histogram


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.asarray(p, float) / np.sum(p), np.asarray(q, float) / np.sum(q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


@torch.no_grad()
def feature_shift(model: torch.nn.Module, tiles: np.ndarray, batch: int = 8) -> dict[str, float]:
    """Per encoder BatchNorm layer: mean W2 distance (target batch statistics vs running
    statistics), in source-variance units; empty when the model has no BatchNorm."""
    parts = [m for n, m in model.named_modules() if n.startswith(("encoders", "bottleneck"))]
    layers = {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d) and any(m is p for p in parts)
    }
    sums: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

    def hook(name):
        def fn(_mod, inp, _out):
            x = inp[0].float()
            sums[name].append(
                torch.stack([x.mean((0, 2, 3)), (x * x).mean((0, 2, 3))]) * x.shape[0]
            )

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    was = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        for i in range(0, len(tiles), batch):
            x = torch.from_numpy(np.array(tiles[i : i + batch])).float() / 255
            model(x[:, None].to(dev))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out = {}
    for n, m in layers.items():
        tot = torch.stack(sums[n]).sum(0) / len(tiles)
        mu_t, var_t = tot[0], (tot[1] - tot[0] ** 2).clamp_min(0)
        mu_s, var_s = m.running_mean.float(), m.running_var.float().clamp_min(1e-5)
        w2 = ((mu_t - mu_s) ** 2 + (var_t.sqrt() - var_s.sqrt()) ** 2) / var_s
        out[n] = float(w2.mean())
    return out


@dataclass
class Decision:
    quadrant: str
    strategy: str
    megapixels: float
    images: int
    large: bool
    similar: bool
    feature_distance: float | None
    histogram_distance: float | None
    thresholds: dict
    per_layer: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def decide(
    model: torch.nn.Module,
    tiles: np.ndarray,
    n_images: int,
    n_pixels: int,
    source_hist: np.ndarray | None,
    a: AutoParams,
) -> Decision:
    per_layer = feature_shift(model, tiles)
    feat = float(np.mean(list(per_layer.values()))) if per_layer else None
    hist = js_distance(source_hist, histogram(tiles)) if source_hist is not None else None
    reasons = []
    mp = n_pixels / 1e6
    large = mp >= a.large_megapixels
    reasons.append(
        f"{n_images} labelled image(s), {mp:.2f} MP {'>=' if large else '<'} "
        f"{a.large_megapixels} MP: {'large' if large else 'small'}"
    )
    different = False
    for label, value, limit in (
        ("feature distance", feat, a.feature_distance),
        ("histogram distance", hist, a.histogram_distance),
    ):
        if value is None:
            reasons.append(f"{label}: not measurable (no BatchNorm / no source histogram)")
            continue
        over = value > limit
        different |= over
        reasons.append(f"{label} {value:.3f} {'>' if over else '<='} {limit}")
    quadrant = f"{'different' if different else 'similar'}_{'large' if large else 'small'}"
    strategy = getattr(a, quadrant)
    reasons.append(f"quadrant {quadrant.replace('_', ' + ')} -> strategy {strategy}")
    return Decision(
        quadrant,
        strategy,
        round(mp, 4),
        n_images,
        large,
        not different,
        None if feat is None else round(feat, 4),
        None if hist is None else round(hist, 4),
        a.model_dump(),
        {k: round(v, 4) for k, v in per_layer.items()},
        reasons,
    )


def report_json(d: Decision) -> str:
    return json.dumps(asdict(d), indent=2) + "\n"


def report_md(d: Decision, pretrained: str) -> str:
    lines = [
        "# Transfer report",
        "",
        f"Pretrained model: `{pretrained}`",
        "",
        f"**Quadrant: {d.quadrant.replace('_', ' + ')} -> strategy `{d.strategy}`**",
        "",
        "| measure | value | threshold |",
        "|---|---|---|",
        f"| labelled megapixels | {d.megapixels} | {d.thresholds['large_megapixels']} |",
        f"| feature distance | {d.feature_distance} | {d.thresholds['feature_distance']} |",
        f"| histogram distance | {d.histogram_distance} | {d.thresholds['histogram_distance']} |",
        "",
        "Reasoning:",
        *[f"- {r}" for r in d.reasons],
        "",
    ]
    return "\n".join(lines)
