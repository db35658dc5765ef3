"""The figures nephropathologists report: the Haas direct method on loops of known thickness,
the thin fraction of a membrane thinned over part of its length, adequacy and reference flags."""

import numpy as np
import pytest

from gbmseg import biopsy, clinical, thickness
from gbmseg.data.scale import given
from tests.conftest import params

NM = 10.0  # nm per pixel


def tapered_loops(rng, n_bands=4, size=400, length=300):
    """One image of ``n_bands`` separate horizontal stretches of membrane, each of its own
    mean width (150-450 nm) tapering +-10% along its length; returns (mask, true width(x)
    per band as (row, x0, x1, w0))."""
    mask = np.zeros((size, size), np.uint8)
    bands = []
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n_bands):
        w0 = rng.uniform(15, 45)
        yc, x0 = 50 + i * 95 + 0.37, 50
        w = w0 * (1 + 0.2 * (xx - x0 - length / 2) / length)
        on = (np.abs(yy - yc) <= w / 2) & (xx >= x0) & (xx < x0 + length)
        mask[on] = 1
        bands.append((yc, x0, x0 + length, w0))
    return mask, bands


def true_width(bands, y, x):
    _yc, x0, x1, w0 = min(bands, key=lambda b: abs(b[0] - y))
    return w0 * (1 + 0.2 * (x - x0 - (x1 - x0) / 2) / (x1 - x0))


def test_haas_mean_within_3_percent_of_the_true_mean_of_the_sampled_loops():
    rng = np.random.default_rng(3)
    pieces, names, truth = [], [], {}
    for k in range(3):  # three images, twelve loops of different thickness
        mask, bands = tapered_loops(rng)
        prof = thickness.profile(mask, 20)
        lp = clinical.loops(mask, prof, NM)
        pts = prof.medial_points[~prof.medial_oblique]
        for label in np.unique(lp.loop):
            on = lp.loop == label
            widths = [true_width(bands, y, x) for y, x in pts[on]]
            truth[f"im{k}:{label}"] = NM * float(np.mean(widths))
        pieces.append(lp)
        names.append(f"im{k}")
    every = clinical.concat(pieces, names)
    assert len(truth) == 12
    for seed in range(5):
        mean, used, drawn = clinical.haas(every, 10, 3, seed)
        assert used == 10 and len(set(drawn)) == 10
        expected = np.mean([truth[d] for d in drawn])
        assert mean == pytest.approx(expected, rel=0.03), seed
    assert clinical.haas(every, 10, 3, 0) == clinical.haas(every, 10, 3, 0)  # seeded


def thinned(stretches=((350, 650),), size=1000, thick=40, thin=20):
    """A membrane 400 nm thick (at 10 nm/px) thinned to 200 nm over ``stretches`` (x ranges:
    by default 30% of its length)."""
    yy, xx = np.mgrid[0:200, 0:size]
    on = np.zeros(xx.shape, bool)
    for start, stop in stretches:
        on |= (xx >= start) & (xx < stop)
    w = np.where(on, thin, thick)
    return (np.abs(yy - 100.37) <= w / 2).astype(np.uint8)


def test_a_membrane_thinned_over_30_percent_of_its_length_reads_a_thin_fraction_of_030():
    mask = thinned()
    prof = thickness.profile(mask, 20)
    lp = clinical.loops(mask, prof, NM)
    assert clinical.thin_fraction(lp, 250) == pytest.approx(0.30, abs=0.03)
    assert clinical.thin_fraction(lp, 150) == pytest.approx(0.0, abs=0.01)
    assert clinical.thinnest(lp) == pytest.approx(200, rel=0.05)  # the thinnest tenth: thin part
    segments = thinned(((150, 300), (600, 750)))  # segmental: two stretches of 15%
    lp2 = clinical.loops(segments, thickness.profile(segments, 20), NM)
    assert clinical.thin_fraction(lp2, 250) == pytest.approx(0.30, abs=0.03)  # two stretches


def _biopsy(masks, p):
    s = biopsy.Samples()
    for i, m in enumerate(masks):
        prof = thickness.profile(m, p.grid_spacing_nm / NM)
        s.add(f"im{i}.png", prof, clinical.loops(m, prof, NM), given(NM, "test"))
    return biopsy.table({"B": s}, p, {}).iloc[0]


def test_adequacy_flags_fire_below_their_thresholds_and_not_above():
    mask, _ = tapered_loops(np.random.default_rng(0), n_bands=2)
    strict = params("measure.adequacy={intercepts: 100000, loops: 10, images: 2}").measure
    row = _biopsy([mask], strict)
    assert row["loops"] == 2 and row["images"] == 1
    assert row["adequacy"] == (
        f"1 images < 2; {row['intercepts']} intercepts < 100000; 2 loops < 10"
    ) or set(row["adequacy"].split("; ")) == {
        "1 images < 2",
        f"{row['intercepts']} intercepts < 100000",
        "2 loops < 10",
    }
    lenient = params("measure.adequacy={intercepts: 10, loops: 2, images: 1}").measure
    assert _biopsy([mask], lenient)["adequacy"] == ""


def test_reference_flags_per_method_and_sex():
    ranges = params().measure.reference.model_dump()  # Haas: men 230-430, women 215-395 nm
    assert clinical.reference_flags({"haas_mean_nm": 220.0}, ranges, "male") == (
        "thin by haas (< 230 nm)"
    )
    assert clinical.reference_flags({"haas_mean_nm": 220.0}, ranges, "female") == ""
    assert clinical.reference_flags({"haas_mean_nm": 220.0}, ranges, "unknown") == ""
    assert clinical.reference_flags({"haas_mean_nm": 210.0}, ranges, "unknown") == (
        "thin by haas (< 215 nm)"
    )
    assert clinical.reference_flags({"haas_mean_nm": 420.0}, ranges, "female") == (
        "thick by haas (> 395 nm)"
    )
    assert clinical.reference_flags({"haas_mean_nm": float("nan")}, ranges, "male") == ""
