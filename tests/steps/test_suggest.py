"""suggest: the images the model is least sure of, as labelme drafts; never an image already
labelled or kept for testing, whatever its name or format."""

import numpy as np
import pandas as pd
import pytest
import tifffile

from gbmseg import stages
from gbmseg.data import labelme
from gbmseg.data.io import read_image, write_png
from gbmseg.data.scale import given
from gbmseg.steps import suggest
from tests.models import dark_model, membrane_image


def _params(**update):
    from tests.conftest import params

    return params().suggest.model_copy(update={"tile": 64, "batch": 2, **update})


def test_views_that_agree_score_zero_and_a_flipped_answer_scores_high():
    prob = np.zeros((32, 32))
    prob[10:14, :] = 0.9
    same = np.stack([prob] * 4)
    assert suggest.scores(same, 0.5, 2)["disagreement"] == 0
    moved = same.copy()
    moved[1] = np.roll(prob, 6, axis=0)
    assert suggest.scores(moved, 0.5, 2)["disagreement"] > 0.1
    unsure = np.full((4, 8, 8), 0.5)
    assert suggest.scores(unsure, 0.4, 0)["entropy"] == pytest.approx(1.0)


@pytest.fixture
def project(tmp_path):
    """The tiny project's labelled target (train + test images) and an unlabelled pool that
    holds two of them again: one renamed, one re-encoded as TIFF."""
    from tests.conftest import tiny

    p = tiny(tmp_path)
    stages.synth(p)
    raw = tmp_path / "data" / "raw" / "target"
    pool = tmp_path / "pool"
    for i in range(4):
        img, _ = membrane_image(64, width=6.0 + 4 * i, seed=i)
        write_png(pool / f"new{i}.png", img, given(5.0, "test"))
    train = sorted((raw / "images").glob("*.png"))[0]
    test = sorted((raw / "test" / "images").glob("*.png"))[0]
    write_png(pool / "renamed.png", read_image(train))
    tifffile.imwrite(pool / "reencoded.tif", read_image(test))
    return p, pool


def test_never_proposes_a_labelled_or_test_image_under_another_name_or_format(project, tmp_path):
    p, pool = project
    q = p.suggest.model_copy(update={"top": 10, "tile": 64, "batch": 2, "images": str(pool)})
    ranked = suggest.run(q, dark_model(), [pool], tmp_path / "out",
                         exclude=stages.known_images(p)[0])  # fmt: skip
    assert sorted(r["image"].rsplit("/", 1)[1] for r in ranked) == [f"new{i}.png" for i in range(4)]
    table = pd.read_csv(tmp_path / "out" / "ranked.csv")
    skipped = dict(zip(table["image"].str.rsplit("/", n=1).str[1], table["skipped"], strict=True))
    assert skipped["renamed.png"] == skipped["reencoded.tif"] == "labelled or test"
    drafts = sorted(f.name for f in (tmp_path / "out").glob("*.json"))
    assert drafts == [f"new{i}.json" for i in range(4)]


def test_drafts_are_the_prediction_as_labelme_polygons_with_the_pixel_size(project, tmp_path):
    _, pool = project
    ranked = suggest.run(_params(top=2), dark_model(), [pool], tmp_path / "out", exclude=set())
    top = ranked[0]
    doc = labelme.read_json(tmp_path / "out" / f"{top['image'].rsplit('/', 1)[1][:-4]}.json")
    assert doc["pixel_size_nm"] == 5.0 and doc["imagePath"] == top["draft"]
    mask = labelme.rasterise(tmp_path / "out" / f"{top['draft'][:-4]}.json", ["gbm"])
    assert 0 < mask.mean() < 0.5  # the dark ribbon, not the background
    assert (tmp_path / "out" / top["draft"]).read_bytes() == (pool / top["draft"]).read_bytes()
    assert len(list((tmp_path / "out").glob("*.json"))) == 2
    assert (tmp_path / "out" / "contact_sheet.png").stat().st_size > 1000


def test_the_same_seed_gives_the_same_ranking_and_random_is_seeded(project, tmp_path):
    _, pool = project
    runs = [suggest.run(_params(score=s, seed=seed), dark_model(), [pool], tmp_path / f"{s}{seed}",
                        exclude=set()) for s, seed in [("entropy", 0), ("entropy", 0),
                                                       ("random", 1), ("random", 1),
                                                       ("random", 2)]]  # fmt: skip
    names = [[r["image"] for r in run] for run in runs]
    assert names[0] == names[1] and names[2] == names[3]
    assert [r["entropy"] for r in runs[0]] == sorted([r["entropy"] for r in runs[0]], reverse=True)
    assert names[2] != names[4]  # another seed, another draw


def test_a_pool_with_nothing_new_says_so(project, tmp_path):
    p, pool = project
    for f in pool.glob("new*"):
        f.unlink()
    from gbmseg.data.io import DataError

    with pytest.raises(DataError, match="already labelled or a test image"):
        suggest.run(_params(), dark_model(), [pool], tmp_path / "out",
                    exclude=stages.known_images(p)[0])  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_draft_never_takes_the_name_of_a_labelled_image(project, tmp_path):
    _, pool = project
    ranked = suggest.run(_params(top=10), dark_model(), [pool], tmp_path / "out", exclude=set(),
                         taken={"new0", "new0_2"})  # fmt: skip
    drafts = {r["image"].rsplit("/", 1)[1]: r["draft"] for r in ranked}
    assert drafts["new0.png"] == "new0_3.png" and drafts["new1.png"] == "new1.png"
    doc = labelme.read_json(tmp_path / "out" / "new0_3.json")
    assert doc["imagePath"] == "new0_3.png" and (tmp_path / "out" / "new0_3.png").is_file()
