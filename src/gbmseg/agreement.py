"""Thickness measured on a prediction vs on its label: the table and the Bland-Altman plot
that both ``measure --compare`` and ``evaluate`` report (the measurement is the product's
output; Dice is a proxy for it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbmseg import thickness
from gbmseg.config import MeasureParams
from gbmseg.data import plots

FIGURES = ("medial_median_nm", "intercept_harmonic_nm")


def measure(mask: np.ndarray, p: MeasureParams, nm_per_px: float) -> dict[str, float]:
    """The per-image thickness figures of one mask (1 = membrane), in nm."""
    prof = thickness.profile(
        mask,
        p.grid_spacing_nm / nm_per_px,
        p.min_length_px,
        p.trim_px,
        p.oblique_ratio,
        p.oblique_window_nm / nm_per_px,
    )
    return thickness.summary(prof, nm_per_px)


def row(name: str, pred: dict, label: dict) -> dict:
    """One image's agreement: each figure on both, and the prediction's relative error."""
    out: dict = {"image": name}
    for key in FIGURES:
        a, b = pred[key], label[key]
        out[f"{key}_pred"], out[f"{key}_label"] = a, b
        out[f"{key}_rel_diff"] = round((a - b) / b, 4) if b and np.isfinite(a * b) else np.nan
    return out


def slope(label: np.ndarray, pred: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Least-squares slope of predicted on labelled thickness and its confidence interval
    (Student t on the slope's standard error): 1 when the prediction follows the label, under 1
    when thin membranes read thicker and thick ones thinner.  Needs 3 images or more."""
    from scipy import stats

    x, y = np.asarray(label, float), np.asarray(pred, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        return {}
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return {
        "slope": round(float(fit.slope), 4),
        "slope_ci_low": round(float(fit.slope - half), 4),
        "slope_ci_high": round(float(fit.slope + half), 4),
    }


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Mean absolute relative difference (every image), Bland-Altman bias / limits in nm
    (the images with a pixel size, when the table says which) and the slope of predicted on
    labelled thickness with its 95% interval (relative figures: any images), per figure."""
    out = {}
    every = pd.Series(True, index=table.index)
    calibrated = table["pixel_size_nm"].notna() if "pixel_size_nm" in table else every
    for key in FIGURES:
        short = key.removesuffix("_nm")
        rel = table[f"{key}_rel_diff"].dropna()
        diff = (table[f"{key}_pred"] - table[f"{key}_label"])[calibrated].dropna()
        out[f"{short}_mean_abs_rel_diff"] = round(float(rel.abs().mean()), 4) if len(rel) else None
        out[f"{short}_bias_nm"] = round(float(diff.mean()), 2) if len(diff) else None
        sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        out[f"{short}_limits_nm"] = round(1.96 * sd, 2) if len(diff) else None
        fit = slope(table[f"{key}_label"].to_numpy(float), table[f"{key}_pred"].to_numpy(float))
        out |= {f"{short}_{k}": v for k, v in fit.items()}
    return out


def bland_altman(table: pd.DataFrame, key: str = "medial_median_nm") -> bytes:
    """Difference (prediction - label) against the mean of both, per image, with the bias
    and the 95% limits of agreement."""
    a, b = table[f"{key}_pred"].to_numpy(float), table[f"{key}_label"].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    mean, diff = (a[ok] + b[ok]) / 2, a[ok] - b[ok]
    fig, ax = plots.figure(5.5, 3.6)
    ax.scatter(mean, diff, s=18, color="tab:blue")
    if len(diff):
        bias, sd = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0
        ax.axhline(bias, color="tab:red", lw=1, label=f"bias {bias:+.1f} nm")
        for lim in (bias - 1.96 * sd, bias + 1.96 * sd):
            ax.axhline(lim, color="grey", ls="--", lw=1)
        ax.legend(fontsize=7, loc="best")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("mean of prediction and label (nm)")
    ax.set_ylabel("prediction - label (nm)")
    ax.set_title(f"Bland-Altman: {key.removesuffix('_nm').replace('_', ' ')}", fontsize=9)
    return plots.png(fig)
