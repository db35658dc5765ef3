"""The biopsy report opened in a real headless browser, read as a nephropathologist would."""

from html.parser import HTMLParser

import numpy as np
import pytest
import tifffile

from benchmarks.phantoms import ribbon
from gbmseg.data.io import binary_to_mask
from gbmseg.steps import measure
from tests.browser import loaded_images, screenshot
from tests.conftest import params
from tests.dmfile import write_dm


class Tables(HTMLParser):
    """Every table's headings and rows as text."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append((tag, self._cell.strip()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            t = self.tables[-1]
            if all(kind == "th" for kind, _ in self._row):
                t["head"] = [text for _, text in self._row]
            else:
                t["rows"].append([text for _, text in self._row])
            self._row = None


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


@pytest.fixture
def report(tmp_path):
    """Six masks of two biopsies: three DM4 at 5 nm/px, three TIFF at 8 nm/px."""
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, w in enumerate((30, 34, 32)):
        m = binary_to_mask(ribbon(w, 400, 15.0 * i, True), "black")
        write_dm(masks / f"B1_{i}.dm4", m, (5.0, 5.0), "nm")
    for i, w in enumerate((50, 46, 48)):
        m = binary_to_mask(ribbon(w, 400, 20.0 * i + 5, True), "black")
        tifffile.imwrite(masks / f"B2_{i}.tif", m, resolution=(1e7 / 8, 1e7 / 8),
                         resolutionunit=3)  # fmt: skip
    p = params("measure.adequacy={intercepts: 20, loops: 2, images: 2}").measure
    measure.run(p, [masks], tmp_path / "m", "black")
    return tmp_path / "m" / "biopsy_report.html"


def test_the_biopsy_report_reads_as_a_clinical_page_in_a_real_browser(report, tmp_path):
    dom, images = loaded_images(report, tmp_path)
    assert len(images) == 1 + 6  # the box plot and every measured overlay, embedded
    assert all(width > 0 for _, width in images), images
    parsed = Tables()
    parsed.feed(dom)
    per_biopsy, per_image = parsed.tables
    for table in (per_biopsy, per_image):
        for j, heading in enumerate(table["head"]):
            assert "_" not in heading, heading
            cells = [row[j] for row in table["rows"] if row[j] != "-"]
            if cells and all(_is_number(c) for c in cells) and heading != "Biopsy":
                assert heading.endswith(")") and "(" in heading, heading  # a unit
    assert [r[0] for r in per_biopsy["rows"]] == ["B1", "B2"]
    assert len(per_image["rows"]) == 6
    head = per_image["head"]
    size, source = head.index("Pixel size (nm)"), head.index("Pixel size from")
    by_image = {r[0]: r for r in per_image["rows"]}
    assert by_image["B1_0.dm4"][size] == "5" and by_image["B2_1.tif"][size] == "8"
    assert by_image["B1_0.dm4"][source] == "DM4 calibration of B1_0.dm4"
    assert by_image["B2_1.tif"][source] == "TIFF resolution tags (cm) of B2_1.tif"
    at = per_biopsy["head"].index("Pixel size from")
    assert [r[at] for r in per_biopsy["rows"]] == [
        "DM4 calibration (3 images)",
        "TIFF resolution tags (cm) (3 images)",
    ]
    flags = per_biopsy["head"].index("Flags")
    # B1 ~160 nm: thin by the Haas ranges of both sexes; B2 ~384 nm: within them
    assert per_biopsy["rows"][0][flags].startswith("thin by haas")
    assert per_biopsy["rows"][1][flags] == "-"
    haas = per_biopsy["head"].index("Haas mean (nm)")
    assert float(per_biopsy["rows"][0][haas]) == pytest.approx(32 * 5, rel=0.05)
    assert float(per_biopsy["rows"][1][haas]) == pytest.approx(48 * 8, rel=0.05)
    assert "Method" in dom and "endothelial to podocyte" in dom and "Sampling" in dom
    shot = screenshot(report, tmp_path / "report.png")
    assert shot.stat().st_size > 20_000  # a page with pictures, not a blank one
    np.testing.assert_equal(shot.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
