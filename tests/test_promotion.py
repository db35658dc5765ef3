"""Registration and promotion against a real MLflow store: better promoted, worse refused,
racing promotions serialised (real processes), the first model becomes champion."""

import functools
import json
import multiprocessing as mp
import time

import numpy as np
import pytest

from gbmseg import promotion, tracking
from tests.conftest import tiny
from tests.registry_world import register_model


def test_bootstrap_promotes_only_a_clear_gain():
    a = np.array([0.70, 0.72, 0.68, 0.71, 0.69])
    better = promotion.paired_bootstrap(a, a + 0.05, 0.0, 0.95, 2000, 0)
    same = promotion.paired_bootstrap(a, a, 0.0, 0.95, 2000, 0)
    worse = promotion.paired_bootstrap(a, a - 0.05, 0.0, 0.95, 2000, 0)
    noisy = promotion.paired_bootstrap(
        a, a + np.array([0.2, -0.2, 0.1, -0.1, 0.02]), 0.0, 0.95, 2000, 0
    )
    assert better["promote"] and better["delta_lower_bound"] == pytest.approx(0.05)
    assert not same["promote"] and not worse["promote"] and not noisy["promote"]
    assert not promotion.paired_bootstrap(a, a + 0.05, 0.1, 0.95, 2000, 0)["promote"]  # min_delta
    with pytest.raises(ValueError, match="paired"):
        promotion.paired_bootstrap(a, a[:3], 0.0, 0.95, 100, 0)


def _hold(lock_path, log_path, i):
    with promotion.lock(f"sqlite:///{lock_path}", "", "m"):
        with open(log_path, "a") as fh:
            fh.write(f"start {i} {time.time()}\n")
        time.sleep(0.3)
        with open(log_path, "a") as fh:
            fh.write(f"end {i} {time.time()}\n")


def test_file_lock_serialises_processes(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_hold, args=(tmp_path / "db", tmp_path / "log", i)) for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    events = [line.split()[0] for line in (tmp_path / "log").read_text().splitlines()]
    assert events == ["start", "end"] * 3


def test_remote_store_needs_an_explicit_lock():
    with pytest.raises(ValueError, match=r"set register\.lock"):
        promotion.lock("", "http://127.0.0.1:5000", "m")


def _register_in_process(uri, lock, root, name, out_q):
    import os

    os.environ["MLFLOW_TRACKING_URI"] = uri
    p = tiny(root, "synth.target_test_images=5")
    res = register_model(root, p, name, group=f"race-{os.getpid()}", lock=lock)
    out_q.put((res["version"], res["decision"]["promote"]))


@pytest.fixture(params=["sqlite", "server+postgresql"])
def registry(request, tmp_path):
    """(tracking URI, promotion lock): the embedded default, and a real `mlflow server` on
    loopback backed by a real PostgreSQL, whose advisory lock guards promotion."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mlflow.db", ""
        return
    from tests.servers import mlflow_server, postgres

    with postgres() as pg, mlflow_server(pg, tmp_path / "artifacts") as url:
        yield url, pg


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.faults  # fault case, listed with tests/faults/
def test_better_promoted_worse_refused_and_races_serialised(world, registry, monkeypatch):
    root, p = world
    uri, lock = registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    name = p.tracking.model_name
    reg = functools.partial(register_model, lock=lock)

    first = reg(root, p, "bad")
    assert (first["version"], first["alias"]) == ("1", "champion")
    assert "no champion yet" in first["decision"]["reason"]

    better = reg(root, p, "good")
    assert better["decision"]["promote"] and better["alias"] == "champion"
    assert better["decision"]["challenger_dice"] > better["decision"]["champion_dice"] + 0.2
    assert tracking.alias_version(name, "champion") == "2"

    worse = reg(root, p, "bad")  # the same weights again: version 1 is reused, not copied
    assert worse["version"] == "1"
    assert not worse["decision"]["promote"] and worse["alias"] == "challenger"
    assert tracking.alias_version(name, "champion") == "2"
    assert tracking.alias_version(name, "challenger") == "1"
    saved = json.loads((root / "bad" / "reg" / "registration.json").read_text())
    assert saved["decision"]["promote"] is False and "not promoted" in saved["decision"]["reason"]

    # demote to the bad model, then race two registrations of a better candidate: only one
    # promotion may win (the loser finds the champion already replaced)
    tracking.set_alias(name, "champion", "1")
    from mlflow import MlflowClient

    MlflowClient().delete_model_version(name, "2")  # so the racers register it afresh
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_register_in_process, args=(uri, lock, root, "good", q))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    results = [q.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(60)
    assert sorted(promoted for _, promoted in results) == [False, True]
    winner = next(v for v, promoted in results if promoted)
    assert tracking.alias_version(name, "champion") == winner
    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version(name, winner).tags
    assert tags["promotion.promote"] == "True"


def _membranes(widths, gap=False, wider=0):
    """Label masks of ribbons of ``widths`` px and predictions of them: with a stretch of
    35% of the length missed (``gap``), or ``wider`` px too wide on each edge."""
    from benchmarks.phantoms import ribbon

    labels, preds = [], []
    for w in widths:
        label = ribbon(w, 320, 0.0)
        pred = ribbon(w + 2 * wider, 320, 0.0) if wider else label.copy()
        if gap:
            pred[:, 60:172] = 0
        labels.append(label)
        preds.append(pred)
    return labels, preds


def _figures(labels, preds):
    """Per-image Dice and relative thickness difference, measured as evaluate measures them."""
    from gbmseg import agreement, metrics

    p = tiny_measure()
    dice = [
        metrics.dice(t.astype(bool), q.astype(bool)) for t, q in zip(labels, preds, strict=True)
    ]
    rel = [
        agreement.row("x", agreement.measure(q, p, 10.0), agreement.measure(t, p, 10.0))[
            promotion.THICKNESS
        ]
        for t, q in zip(labels, preds, strict=True)
    ]
    return np.array(dice), np.array(rel)


def tiny_measure():
    from tests.conftest import params

    return params().measure


def _rim_refused_exact_promoted(labels, champion, rim, exact):
    """The rim beats the champion on Dice and is refused on thickness; the exact masks,
    better on both, pass. Returns the refusal and the champion's and rim's figures."""
    old_dice, old_rel = _figures(labels, champion)
    rim_dice, rim_rel = _figures(labels, rim)
    exact_dice, exact_rel = _figures(labels, exact)
    assert rim_dice.mean() > old_dice.mean() + 0.05  # Dice alone would promote the rim
    assert promotion.paired_bootstrap(old_dice, rim_dice, 0.0, 0.95, 2000, 0)["promote"]
    refused = promotion.thickness_guard(old_rel, rim_rel, 0.02)
    assert refused is not None and not refused["promote"], (old_rel, rim_rel)
    assert "thickness agrees worse" in refused["reason"]
    assert promotion.paired_bootstrap(old_dice, exact_dice, 0.0, 0.95, 2000, 0)["promote"]
    assert promotion.thickness_guard(old_rel, exact_rel, 0.02) is None  # better on both
    return refused, old_rel, rim_rel


def test_higher_dice_with_a_rim_too_wide_is_not_promoted_and_better_on_both_is():
    widths = [15, 18, 21, 24, 27, 30]  # 150-300 nm at 10 nm/px
    labels, champion = _membranes(widths, gap=True)  # right thickness, a stretch missed
    _, rim = _membranes(widths, wider=2)  # the whole length, 2 px too wide on each edge
    _, exact = _membranes(widths)
    refused, old_rel, rim_rel = _rim_refused_exact_promoted(labels, champion, rim, exact)
    assert "thickness_tolerance" in refused["reason"]
    assert refused["challenger_thickness_mean_abs_rel_diff"] > 0.1  # +4 px on 15-30 px
    assert refused["champion_thickness_mean_abs_rel_diff"] < 0.03
    assert promotion.thickness_guard(old_rel, rim_rel, 1.0) is None  # a loose tolerance
    assert promotion.thickness_guard(np.full(3, np.nan), rim_rel[:3], 0.02) is None


def test_the_guard_holds_on_real_em_membrane_masks():
    """The same decision on the ISBI-2012 labels (real membranes, not drawn ribbons): a
    challenger 1 px too wide on each edge beats a champion that misses a stretch on Dice and
    is refused on thickness; the labels themselves, better on both, pass."""
    from scipy import ndimage

    from gbmseg.data.io import read_mask
    from tests.conftest import shared

    isbi = shared("isbi2012")
    labels = [read_mask(f, "black")[:256, :256] for f in sorted((isbi / "masks").iterdir())[:6]]
    champion = [t.copy() for t in labels]
    for q in champion:
        q[:, 80:170] = 0  # right thickness, a stretch missed
    rim = [ndimage.binary_dilation(t).astype(np.uint8) for t in labels]
    refused, _, _ = _rim_refused_exact_promoted(labels, champion, rim, labels)
    assert refused["challenger_thickness_mean_abs_rel_diff"] > 0.1  # 1 px on membranes ~5-10 px
