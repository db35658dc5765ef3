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
