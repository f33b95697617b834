"""Tests of bnlesson.checks (the parity tables the chapters print)."""
import math

import pytest
import torch

from bnlesson.checks import compare, diff_bound, parity_table, rel_error


def test_compare_exact_close_and_far():
    a = torch.tensor([1.0, 2.0, 3.0])
    same = compare("same", a, a.clone())
    assert same.exact and same.close and same.max_diff == 0.0
    near = compare("near", a, a + 1e-7)
    assert not near.exact and near.close
    assert near.max_diff == pytest.approx(1e-7, rel=0.5)
    far = compare("far", a, a + 1e-3, atol=1e-5, rtol=1e-5)
    assert not far.exact and not far.close


def test_compare_mixed_dtypes_and_shape_mismatch():
    a = torch.tensor([0.5, 0.25])
    row = compare("mixed", a, a.double())
    assert row.close and row.max_diff == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        compare("bad", torch.zeros(2), torch.zeros(3))


@pytest.mark.parametrize("x, text", [(0.0, "0"), (3.2e-7, "<= 1e-06"),
                                     (1e-6, "<= 1e-06"), (0.5, "<= 1e+00"),
                                     (12.0, "<= 1e+02")])
def test_diff_bound(x, text):
    assert diff_bound(x) == text


def test_diff_bound_floor():
    # rounding-level differences print the same on every CPU
    assert diff_bound(3e-11, floor=1e-6) == diff_bound(8e-7, floor=1e-6) \
        == "<= 1e-06"
    assert diff_bound(2e-3, floor=1e-6) == "<= 1e-02"
    assert diff_bound(0.0, floor=1e-6) == "0"


def test_diff_bound_special_values():
    assert diff_bound(math.inf) == "inf"
    assert diff_bound(math.nan) == "nan"
    with pytest.raises(ValueError):
        diff_bound(-1.0)


def test_parity_table_lists_every_row():
    rows = [compare("output", torch.ones(3), torch.ones(3)),
            compare("running var", torch.ones(3), 2 * torch.ones(3),
                    atol=1e-7, rtol=1e-6)]
    text = parity_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4
    assert "output" in lines[2] and "True" in lines[2]
    assert lines[2].endswith("0")
    assert "running var" in lines[3] and "False" in lines[3]
    assert "(1e-07, 1e-06)" in lines[3] and lines[3].endswith("<= 1e+00")


def test_rel_error():
    a = torch.tensor([100.0, 0.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, a + torch.tensor([0.0, 1.0])) == pytest.approx(0.01)
    assert rel_error(torch.zeros(3), torch.zeros(3)) == 0.0
    with pytest.raises(ValueError):
        rel_error(torch.zeros(2), torch.zeros(3))
