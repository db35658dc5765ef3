"""Overlays and contact sheets people look at."""

import numpy as np

from gbmseg.data import preview


def test_overlays_tint_only_the_structure_and_errors_get_their_colours():
    img = np.full((8, 8), 100, np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4] = 1
    rgb = preview.overlay(img, mask)
    assert rgb.shape == (8, 8, 3) and (rgb[0, 0] == 100).all() and rgb[2, 0, 0] > 100
    pred = np.zeros_like(mask)
    pred[3:5] = 1
    err = preview.error_overlay(img, mask, pred)
    tp, fp, fn = err[3, 0], err[4, 0], err[2, 0]
    assert tp[1] > tp[0] and fp[0] > fp[1] and fn[2] > fn[0]  # green, red, blue


def test_thumbnails_shrink_and_the_grid_lays_tiles_out():
    big = np.zeros((400, 200, 3), np.uint8)
    assert preview.thumbnail(big, 100).shape[:2] == (100, 50)
    sheet = preview.grid([big[:50, :50], big[:40, :30], big[:50, :50]], cols=2, pad=4)
    assert sheet.shape == (2 * 54 + 4, 2 * 54 + 4, 3)
    assert (sheet[:4] == 255).all()  # white margins
