"""First-layer weights as tiles."""
import numpy as np
import pytest

from widgets.weight_grid import (
    LEVELS,
    NEGATIVE,
    POSITIVE,
    ZERO,
    WeightGrid,
    WeightGridError,
    diverging_rgb,
    weight_tiles,
)


@pytest.fixture
def grid(show):
    return show(WeightGrid(), 320, 320)


def test_affine_first_layer(grid):
    W = np.random.default_rng(0).normal(size=(784, 50)).astype(np.float32)
    grid.set_weights(W)
    assert grid.tile_count() == 50 and grid.tile_size() == 28
    assert grid.grid_shape() == (7, 8)
    assert grid.message() == ""
    grid.grab()
    grid.set_weights(np.zeros((784, 100)), max_tiles=64)
    assert grid.tile_count() == 64


def test_conv_filters(grid):
    W = np.random.default_rng(1).normal(size=(8, 1, 5, 5))
    grid.set_weights(W)
    assert grid.tile_count() == 8 and grid.tile_size() == 5
    grid.set_weights(np.zeros((30, 3, 3, 3)), max_tiles=16)
    assert grid.tile_count() == 16 and grid.tile_size() == 3


def test_tiles_are_the_columns(grid):
    W = np.zeros((784, 3))
    W[0, 1] = 5.0  # unit 1 looks at the top-left pixel
    tiles = weight_tiles(W)
    assert tiles.shape == (3, 28, 28) and tiles[1, 0, 0] == 5.0 and tiles[0].sum() == 0


def test_colours_are_symmetric_per_tile():
    tiles = np.array([[[1.0, -1.0], [0.0, 0.5]], [[100.0, 0.0], [0.0, -50.0]]])
    rgb = diverging_rgb(tiles)
    red, blue, white = rgb[0, 0, 0], rgb[0, 0, 1], rgb[0, 1, 0]
    assert red[0] > red[2] and blue[2] > blue[0] and white.min() > 240
    np.testing.assert_array_equal(rgb[1, 0, 0], red)  # each tile is scaled by its own largest weight
    np.testing.assert_allclose(rgb[0, 1, 1], (ZERO + POSITIVE) / 2, atol=1)  # half the largest weight: half-red
    np.testing.assert_allclose(rgb[1, 1, 1], (ZERO + NEGATIVE) / 2, atol=1)  # -50 of 100: half-blue
    zero = diverging_rgb(np.zeros((1, 3, 3)))
    assert (zero == white).all()  # an all-zero tile is white, no division by zero


def test_other_shapes_show_a_message(grid):
    grid.set_weights(np.ones((784, 10)))
    grid.set_weights(np.ones((100, 10)))
    assert grid.tile_count() == 0 and "not pictures" in grid.message() and "(100, 10)" in grid.message()
    grid.grab()
    grid.set_weights(None)
    assert grid.tile_count() == 0 and grid.message() == "No weights to show"
    with pytest.raises(WeightGridError, match="max_tiles"):
        grid.set_weights(np.ones((784, 10)), max_tiles=0)
    with pytest.raises(WeightGridError, match="NaN"):
        grid.set_weights(np.full((784, 10), np.nan))


def test_colours_come_from_the_table_within_one_step_of_the_exact_blend():
    tiles = np.random.default_rng(2).normal(size=(5, 28, 28)).astype(np.float32)
    v = tiles / np.abs(tiles).reshape(5, -1).max(axis=1)[:, None, None]
    v = v[..., None]
    exact = np.where(v >= 0, ZERO + v * (POSITIVE - ZERO), ZERO - v * (NEGATIVE - ZERO))
    rgb = diverging_rgb(tiles)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 28, 28, 3)
    assert np.abs(rgb - exact).max() <= 1.0  # 2 × LEVELS + 1 colours: finer than 8 bits per channel
    assert LEVELS >= 255


def test_the_first_units_of_a_wide_layer_say_how_many_there_are(grid):
    W = np.random.default_rng(3).normal(size=(784, 64))
    grid.set_weights(W, total=256)  # a caller copies only the 64 units shown of a 784×256 layer
    assert grid.tile_count() == 64
    assert grid.caption() == "64 of 256 units, 28×28 weights each  ·  red +  blue −"
    grid.grab()
    grid.set_weights(W)
    assert grid.caption() == "64 units, 28×28 weights each  ·  red +  blue −"
    grid.set_weights(np.ones((8, 1, 5, 5)))
    assert grid.caption() == "8 filters, 5×5 weights each  ·  red +  blue −"
    grid.set_weights(None)
    assert grid.caption() == ""
