"""Images grouped into biopsies (a name pattern or a table), sexes from the table, and the
reference ranges that apply."""

import pytest

from gbmseg import biopsy
from gbmseg.data.io import DataError
from tests.conftest import params


def test_the_name_pattern_groups_images_and_a_table_overrides_it(tmp_path):
    names = ["B1_a.png", "B1_b.tif", "B2_a.png", "lonely.png"]
    by_name = biopsy.biopsy_of(names, params().measure.biopsy_pattern)
    assert by_name == {"B1_a.png": "B1", "B1_b.tif": "B1", "B2_a.png": "B2", "lonely.png": "lonely"}
    csv = tmp_path / "b.csv"
    csv.write_text("image,biopsy,sex\nB1_a,X,female\nB1_b,X,female\nB2_a,Y,\nlonely,Y,\n")
    assert set(biopsy.biopsy_of(names, "", csv).values()) == {"X", "Y"}
    assert biopsy.sexes_of(csv) == {"X": "female", "Y": "unknown"}
    csv.write_text("image,biopsy\nB1_a,X\n")
    with pytest.raises(DataError, match="no biopsy for"):
        biopsy.biopsy_of(names, "", csv)


def test_a_biopsy_given_two_sexes_is_refused(tmp_path):
    csv = tmp_path / "b.csv"
    csv.write_text("image,biopsy,sex\na,X,male\nb,X,female\n")
    with pytest.raises(DataError, match="biopsy X is given two sexes"):
        biopsy.sexes_of(csv)


def test_reference_ranges_follow_the_sex():
    p = params().measure
    male = dict((m, (lo, hi)) for m, lo, hi in biopsy.ranges_of(p, "male"))
    female = dict((m, (lo, hi)) for m, lo, hi in biopsy.ranges_of(p, "female"))
    assert male and female and male != female
