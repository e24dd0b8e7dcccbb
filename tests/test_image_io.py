"""dplc.image_io: the picture grid of the training stages' previews."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from dplc.image_io import save_tile, tile


@pytest.mark.parametrize(("n", "channels", "nrow"), [(16, 1, 8), (5, 3, 2), (3, 1, 8)])
def test_tile_is_torchvisions_make_grid(n, channels, nrow):
    images = torch.randint(0, 256, (n, channels, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))
    expected = torchvision.utils.make_grid(images, nrow=nrow, padding=1)  # grey becomes 3 equal planes
    got = tile(images.permute(0, 2, 3, 1).numpy(), nrow=nrow, padding=1)
    assert np.array_equal(got, expected.permute(1, 2, 0).numpy()[..., :channels])


def test_save_tile_writes_grey_or_rgb(tmp_path):
    grey = save_tile(np.full((4, 3, 3, 1), 200, np.uint8), tmp_path / "g.png", nrow=2)
    rgb = save_tile(np.full((4, 3, 3, 3), 9, np.uint8), tmp_path / "sub" / "c.png", nrow=4)
    assert Image.open(grey).mode == "L" and Image.open(grey).size == (9, 9)
    assert Image.open(rgb).mode == "RGB" and Image.open(rgb).size == (17, 5)


@pytest.mark.parametrize("bad", [np.zeros((0, 2, 2, 1), np.uint8), np.zeros((2, 2, 1), np.uint8), np.zeros((1, 2, 2, 1), np.float32)])
def test_tile_refuses_what_is_not_a_uint8_batch(bad):
    with pytest.raises(ValueError, match="uint8 batch"):
        tile(bad)
