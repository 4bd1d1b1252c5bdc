import numpy as np
import pytest
import torch

from postbc.data.normalizer import MinMaxNormalizer


def data_with_constant_dim():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32) * [1.0, 10.0, 0.0] + [0.0, 5.0, 2.5]
    return x.astype(np.float32)


def test_maps_the_data_range_onto_minus_one_one_and_back():
    x = data_with_constant_dim()
    norm = MinMaxNormalizer.fit(x)
    y = norm.normalize(x)
    np.testing.assert_allclose(y[:, :2].min(axis=0), -1.0, atol=1e-6)
    np.testing.assert_allclose(y[:, :2].max(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize(y), x, atol=1e-5)


def test_constant_dimension_is_shifted_not_divided():
    x = data_with_constant_dim()
    norm = MinMaxNormalizer.fit(x)
    assert np.all(norm.normalize(x)[:, 2] == 0.0)
    off = np.array([[0.0, 0.0, 3.0]], np.float32)  # a value the data never had: still finite, still invertible
    assert np.all(np.isfinite(norm.normalize(off)))
    np.testing.assert_allclose(norm.unnormalize(norm.normalize(off)), off, atol=1e-6)


def test_torch_matches_numpy_and_keeps_dtype():
    x = data_with_constant_dim()
    norm = MinMaxNormalizer.fit(x)
    t = torch.from_numpy(x).double()
    y = norm.normalize(t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), norm.normalize(x.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize(y).numpy(), x, atol=1e-5)
    assert norm.normalize(x.astype(np.float64)).dtype == np.float64


def test_dict_round_trip_is_exact():
    norm = MinMaxNormalizer.fit(data_with_constant_dim())
    again = MinMaxNormalizer.from_dict(norm.to_dict())
    x = data_with_constant_dim()
    np.testing.assert_array_equal(again.normalize(x), norm.normalize(x))


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="high >= low"):
        MinMaxNormalizer([0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        MinMaxNormalizer([np.nan], [1.0])
