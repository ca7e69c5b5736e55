"""image_to_numpy on message stand-ins (its decoders only read attributes): rows padded past the pixels (`step`)."""

from types import SimpleNamespace

import numpy as np
import pytest

from hiors_core.convert import image_to_numpy
from hiors_core.errors import BadInputError


def image(pixels: np.ndarray, encoding: str = "rgb8", pad: int = 0, data=None) -> SimpleNamespace:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 255, np.uint8)], axis=1)
    return SimpleNamespace(
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=padded.shape[1],
        data=padded.tobytes() if data is None else data,
    )


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_rgb8_rows_padded_past_the_pixels_decode_to_the_pixels(pad):
    px = np.random.default_rng(pad).integers(0, 256, (5, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(image(px, pad=pad)), px)


def test_bgr8_with_padded_rows_comes_out_as_rgb():
    px = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(image(px[..., ::-1].copy(), "bgr8", pad=2)), px)


def test_padded_rows_with_too_little_data_are_bad_input():
    px = np.zeros((4, 2, 3), np.uint8)
    msg = image(px, pad=2)
    msg.data = msg.data[:-1]
    with pytest.raises(BadInputError, match="rows of 8 bytes"):
        image_to_numpy(msg)
