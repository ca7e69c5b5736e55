"""`all_finite`, the weight check's finiteness test on exponent bits, against torch.isfinite (pure, no rclpy)."""

import pytest
import torch

from hiors_policy.policy import all_finite

FLOATS = [torch.bfloat16, torch.float16, torch.float32, torch.float64]
INTS = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}


@pytest.mark.parametrize("dtype", FLOATS)
def test_random_bit_patterns_agree_with_isfinite(dtype):
    g = torch.Generator().manual_seed(0)
    info = torch.iinfo(INTS[dtype])
    for _ in range(200):
        bits = torch.randint(info.min, info.max, (37,), generator=g, dtype=INTS[dtype])
        t = bits.view(dtype)
        assert all_finite(t, slice_elems=8) == bool(torch.isfinite(t).all())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", [0, 7, 8, 9, 99])  # first, either side of a slice boundary, last
def test_one_bad_value_anywhere_is_found(dtype, bad, where):
    t = torch.zeros(100, dtype=dtype)
    t[where] = bad
    assert not all_finite(t, slice_elems=8)


@pytest.mark.parametrize("dtype", FLOATS)
def test_extreme_finite_values_pass(dtype):
    fi = torch.finfo(dtype)
    t = torch.tensor([fi.max, -fi.max, fi.tiny, fi.tiny / 4, -0.0, 0.0, fi.eps], dtype=dtype)
    assert all_finite(t)


def test_empty_non_contiguous_and_integer_tensors():
    assert all_finite(torch.empty(0, 3, dtype=torch.bfloat16))
    t = torch.zeros(4, 6, dtype=torch.bfloat16)
    t[1, 0] = float("nan")
    assert not all_finite(t.t())  # a transposed view: checked through a contiguous copy
    assert all_finite(t[2:].t())
    assert all_finite(torch.arange(10))
    assert all_finite(torch.ones(3, dtype=torch.bool))
