"""Random crops from whole training images: every crop is a true window of one image with
its own mask, drawn in proportion to area, structure oversampled as asked, reproducible."""

import numpy as np
import pytest

from gbmseg.data.io import DataError
from gbmseg.engine.crops import Crops, Wholes
from gbmseg.engine.crops import load as load_wholes
from gbmseg.engine.data import Batches


def wholes(*shapes: tuple[int, int]) -> tuple[Wholes, list[np.ndarray]]:
    """Images whose pixel value says which image (i * 40) plus where (row), masks = a band."""
    imgs, msks = [], []
    for i, (h, w) in enumerate(shapes):
        img = (i * 40 + np.arange(h)[:, None] % 40 + np.zeros((1, w), int)).astype(np.uint8)
        msk = np.zeros((h, w), np.uint8)
        msk[h // 2 : h // 2 + 2] = 1
        imgs.append(img)
        msks.append(msk)
    flat = Wholes(
        np.concatenate([a.ravel() for a in imgs]),
        np.concatenate([m.ravel() for m in msks]),
        np.array(shapes, np.int64),
    )
    return flat, imgs


def test_crops_are_windows_of_one_image_with_its_mask_in_proportion_to_area():
    w, imgs = wholes((16, 16), (48, 16))  # the second has 3x the area
    c = Crops(w, 8, seed=0)
    xs, ys = c.batch(2000)
    assert xs.shape == ys.shape == (2000, 8, 8)
    which = xs[:, 0, 0] // 40
    assert np.mean(which == 1) == pytest.approx(0.75, abs=0.03)
    for x, y in zip(xs[:50], ys[:50], strict=True):
        img = imgs[int(x[0, 0] // 40)]
        rows = [r for r in range(img.shape[0] - 7) if np.array_equal(img[r : r + 8, :8], x)]
        assert rows, "a crop is a window of its image"
        msk = np.zeros(img.shape, np.uint8)
        msk[img.shape[0] // 2 : img.shape[0] // 2 + 2] = 1
        assert any(np.array_equal(msk[r : r + 8, :8], y) for r in rows)


def test_structure_is_oversampled_and_the_stream_is_seeded():
    w, _ = wholes((200, 8))  # a 2-row band in 200 rows: few 8-px crops show it
    plain = Crops(w, 8, seed=0).batch(3000)[1].reshape(3000, -1).max(axis=1).mean()
    more = Crops(w, 8, seed=0, foreground=9.0).batch(3000)[1].reshape(3000, -1).max(axis=1).mean()
    assert plain == pytest.approx(8 / 193, abs=0.015)  # starts 94-101 of 0-192
    assert more > 3 * plain
    a, b = Crops(w, 8, seed=3).batch(10), Crops(w, 8, seed=3).batch(10)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], Crops(w, 8, seed=4).batch(10)[0])


def test_batches_draw_crops_for_a_step_budget_and_split_them_between_ranks():
    w, _ = wholes((64, 64), (32, 40))
    tiles = np.zeros((3, 8, 8), np.uint8)
    one = Batches(tiles, tiles, 4, train=True, seed=0, steps=5, crops=Crops(w, 8, seed=1))
    got = list(one)
    assert len(one) == 5 and len(got) == 5 and all(x.shape == (4, 1, 8, 8) for x, _ in got)
    assert all(float(x.max()) > 0 for x, _ in got)  # crops, not the blank packed tiles
    ranks = [
        list(
            Batches(
                tiles,
                tiles,
                2,
                train=True,
                seed=0,
                steps=2,
                rank=r,
                world=2,
                crops=Crops(w, 8, seed=1),
            )
        )
        for r in (0, 1)
    ]
    assert all(len(x) == 2 for run in ranks for x, _ in run)
    assert not np.array_equal(ranks[0][0][0].numpy(), ranks[1][0][0].numpy())
    val = Batches(tiles, tiles, 4, train=False, steps=5, crops=Crops(w, 8, seed=1))
    assert len(val) == 1  # validation always uses the packed tiles


def test_missing_or_malformed_whole_images_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="re-run `gbmseg pack`"):
        load_wholes(tmp_path)
    with pytest.raises(DataError, match="disagree"):
        Wholes(np.zeros(10, np.uint8), np.zeros(10, np.uint8), np.array([[4, 4]]))
    w, _ = wholes((8, 8))
    with pytest.raises(DataError, match="smaller than"):
        Crops(w, 16, seed=0)


def test_an_epochs_crops_follow_the_batch_generator_so_a_resume_replays_them():
    w, _ = wholes((64, 64), (32, 40))
    tiles = np.zeros((3, 8, 8), np.uint8)
    b = Batches(tiles, tiles, 4, train=True, seed=0, steps=3, crops=Crops(w, 8, seed=1))
    start = b.generator.get_state()  # what a checkpoint keeps of an epoch
    first = [x.numpy() for x, _ in b]
    second = [x.numpy() for x, _ in b]  # the next epoch: other crops
    b.generator.set_state(start)
    again = [x.numpy() for x, _ in b]
    assert all(np.array_equal(a, c) for a, c in zip(first, again, strict=True))
    assert not all(np.array_equal(a, c) for a, c in zip(first, second, strict=True))
