"""The lab's loop as the README walks it: `dvc repro` -> `gbmseg suggest` -> correct the drafts
in labelme -> move them into the target set -> `dvc repro`. Every earlier split row stays,
the corrected images are trained on, and the test images stay test."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from gbmseg.data import labelme, splits
from gbmseg.data.atomic import write_json
from gbmseg.data.io import read_mask
from tests.project import json_of, run, synth_and_commit


@pytest.mark.slow
def test_suggest_correct_accept_repro_keeps_every_split_and_trains_on_the_new_images(
    project_files, tmp_path
):
    proj = shutil.copytree(project_files, tmp_path / "proj")
    run(proj, "git", "init", "-q")
    synth_and_commit(proj)
    run(proj, "dvc", "repro")
    before = splits.read(proj / "splits" / "target.csv")
    seen_before = json_of(proj / "models" / "finetune" / "trained_on.json")["images"]

    # the lab's unlabelled images (more of the target domain, masks kept aside as "truth"),
    # and a test image again under another name: it must never be proposed
    more = tmp_path / "more"
    run(proj, "gbmseg", "synth", "-S", f"sets.target.raw={more}", "-S", "synth.seed=11",
        "-S", "synth.source_images=0", "-S", "synth.target_test_images=0",
        "-S", "synth.target_images=5")  # fmt: skip
    pool = proj / "data" / "unlabelled"
    shutil.copytree(more / "images", pool)
    test_image = sorted((proj / "data" / "raw" / "target" / "test" / "images").iterdir())[0]
    shutil.copy(test_image, pool / "copy_of_a_test_image.png")

    run(proj, "gbmseg", "suggest", "--model", "models/finetune", "--top", "2")
    ranked = pd.read_csv(proj / "to_label" / "ranked.csv")
    assert ranked.set_index(ranked["image"].str.rsplit("/", n=1).str[1]).loc[
        "copy_of_a_test_image.png", "skipped"] == "labelled or test"  # fmt: skip
    drafts = sorted((proj / "to_label").glob("*.json"))
    assert len(drafts) == 2 and (proj / "to_label" / "contact_sheet.png").is_file()

    # the pathologist corrects each draft in labelme (here: the true outline), then moves
    # image + JSON into the target's images/ folder
    images = proj / "data" / "raw" / "target" / "images"
    for doc in drafts:
        draft = labelme.read_json(doc)
        origin = Path(ranked.set_index("draft").loc[draft["imagePath"], "image"]).name
        truth = read_mask(more / "masks" / origin, "black")
        write_json(doc, draft | {"shapes": labelme.shapes(truth, "gbm", labelme.HOLE)})
        shutil.move(proj / "to_label" / draft["imagePath"], images / draft["imagePath"])
        shutil.move(doc, images / doc.name)
    run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    run(proj, "dvc", "repro")

    after = splits.read(proj / "splits" / "target.csv")
    assert {k: after[k] for k in before} == before  # every earlier row kept as it was
    new = {f"{d.stem}.png" for d in drafts}
    assert not new & set(before)  # a name a label already has is never reused
    assert set(after) - set(before) == new
    assert {after[n] for n in new} <= {"train", "val"}  # learnt from, never a test image
    assert json_of(proj / "models" / "finetune" / "trained_on.json")["images"] > seen_before
    tested = json_of(proj / "metrics" / "evaluate.json")["n_images"]
    assert tested == sum(v == "test" for v in before.values())  # the same test images
