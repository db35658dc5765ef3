"""benchmarks/transfer_report.py: re-running some cells replaces exactly those and says so."""

import json

from benchmarks.transfer_report import replace_cells, report


def _res(strategies, dice, auto_params):
    cells = [
        {"strategy": s, "k": k, "dice": dice, "iou": dice / 2, "chosen": s}
        for k in (1, 2)
        for s in strategies
    ]
    return {
        "source": "/d/isbi2012",
        "target": "/d/vnc",
        "test_images": ["a", "b"],
        "settings": {"steps": "200"},
        "auto_params": auto_params,
        "cells": cells,
    }


def test_replacing_auto_cells_keeps_the_rest_and_records_the_change(tmp_path):
    old = _res(["scratch", "head", "auto"], 0.8, {"similar_small": "head"})
    new = _res(["auto"], 0.9, {"similar_small": "decoder"})
    merged = replace_cells(old, new)
    got = [(c["strategy"], c["k"], c["dice"]) for c in merged["cells"]]
    assert got == [
        ("scratch", 1, 0.8),
        ("head", 1, 0.8),
        ("auto", 1, 0.9),
        ("scratch", 2, 0.8),
        ("head", 2, 0.8),
        ("auto", 2, 0.9),
    ]
    assert merged["auto_params"] == {"similar_small": "decoder"}
    assert merged["replaced"][0]["cells"] == [("auto", 1), ("auto", 2)]
    report(merged, tmp_path)
    md = (tmp_path / "transfer_vnc.md").read_text()
    assert "| auto | 0.900 (0.450) -> auto | 0.900 (0.450) -> auto |" in md
    assert "Re-run later" in md
    assert json.loads((tmp_path / "transfer_vnc.json").read_text())["cells"][2]["dice"] == 0.9
    assert (tmp_path / "transfer_vnc.png").stat().st_size > 1000


def _size_cells(dice_of):
    """Cells of benchmarks/size_axis.py whose Dice is ``dice_of(images, megapixels, strategy)``."""
    arms = {"1 crop": (1, 0.26), "4 crops": (4, 1.05), "1 image": (1, 1.05), "4 images": (4, 4.2)}
    return [
        {
            "arm": arm,
            "strategy": s,
            "seed": seed,
            "images": n,
            "megapixels": mp,
            "structure_megapixels": mp / 5,
            "tiles": int(mp * 200),
            "dice": dice_of(n, mp, s) + 0.001 * seed,
            "train_seconds": 60.0,
        }
        for arm, (n, mp) in arms.items()
        for s in ("decoder", "full")
        for seed in (0, 1)
    ]


def test_size_axis_report_finds_the_unit_the_scores_follow(tmp_path):
    from benchmarks.size_axis_report import agreement, report, rows

    # quality and the full - decoder gap follow the labelled pixels, never the image count
    cells = _size_cells(lambda n, mp, s: 0.8 + 0.02 * mp + (0.03 / mp if s == "full" else 0))
    by_unit = {r["unit"]: r for r in agreement(cells)}
    assert by_unit["megapixels"]["gap diff, equal"] == 0
    assert by_unit["megapixels"]["full Dice diff, equal"] == 0
    assert by_unit["images"]["full Dice diff, equal"] > 0.05
    table = {r["arm"]: r for r in rows(cells)}
    assert table["1 crop"]["full - decoder"].startswith("0.115 +- 0.000")
    # the reverse world: only the image count matters
    cells = _size_cells(lambda n, mp, s: 0.8 + 0.01 * n + (0.01 if s == "full" else 0))
    by_unit = {r["unit"]: r for r in agreement(cells)}
    assert by_unit["images"]["full Dice diff, equal"] == 0
    assert by_unit["megapixels"]["full Dice diff, equal"] > 0.02
    doc = {
        "machine": {"cuda": None, "cpu": "x", "cores": 2, "cpu_amx": False, "torch": "t"},
        "args": {"target": "vnc", "steps": 400, "tile": 128, "crop": 512, "seeds": [0, 1]},
        "start": {"path": "m", "sha256": "0" * 64},
        "cells": cells,
    }
    (tmp_path / "s.json").write_text(json.dumps(doc))
    md = report(tmp_path / "s.json")
    assert "| 4 images | 4 | 4.2 |" in md and (tmp_path / "s.md").read_text() == md
