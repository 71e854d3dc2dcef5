import numpy as np
import pytest

from keras_bnreg import measures
from keras_bnreg.theory.forms import regularization_rate


def random_pair(seed=0, d=12, n=5):
    rng = np.random.default_rng(seed)
    return {
        "kernel": rng.normal(size=(d, n)),
        "bias": rng.normal(size=n),
        "gamma": rng.uniform(0.5, 2, n),
        "beta": rng.normal(size=n),
        "moving_mean": rng.normal(size=n),
        "moving_variance": rng.uniform(0.1, 3, n),
        "epsilon": 1e-3,
    }


def test_fold_batchnorm_equals_bn_of_dense():
    p = random_pair()
    x = np.random.default_rng(1).normal(size=(50, 12))
    dense = x @ p["kernel"] + p["bias"]
    bn = (dense - p["moving_mean"]) / np.sqrt(p["moving_variance"] + p["epsilon"])
    expected = bn * p["gamma"] + p["beta"]
    w_bn, b_bn = measures.fold_batchnorm(**p)
    np.testing.assert_allclose(x @ w_bn + b_bn, expected, rtol=1e-12, atol=1e-12)


def test_fold_without_bias_equals_zero_bias():
    p = random_pair()
    with_zero = measures.fold_batchnorm(**{**p, "bias": np.zeros(5)})
    without = measures.fold_batchnorm(**{**p, "bias": None})
    np.testing.assert_array_equal(with_zero[0], without[0])
    np.testing.assert_array_equal(with_zero[1], without[1])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kernel": np.ones(3)}, "kernel must be 2-D"),
        ({"gamma": np.ones(4)}, "gamma must have shape"),
        ({"moving_variance": -np.ones(5)}, "moving_variance must be >= 0"),
        ({"epsilon": 0.0}, "epsilon must be > 0"),
    ],
)
def test_fold_rejects_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        measures.fold_batchnorm(**{**random_pair(), **change})


def test_alphas_from_chunked_moments_equal_direct_formulas():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=0.7, size=(1000, 12))
    w = rng.normal(size=(12, 5))
    count, s1, s2 = 0, 0.0, 0.0
    for chunk in np.array_split(x, 7):
        z = chunk @ w
        count, s1, s2 = count + len(z), s1 + z.sum(0), s2 + (z**2).sum(0)
    alpha, centred = measures.alphas_from_moments(count, s1, s2)
    second_moment = x.T @ x / len(x)
    covariance = np.cov(x, rowvar=False, bias=True)
    np.testing.assert_allclose(alpha, np.sqrt(np.diag(w.T @ second_moment @ w)), rtol=1e-10)
    np.testing.assert_allclose(centred, np.sqrt(np.diag(w.T @ covariance @ w)), rtol=1e-10)
    np.testing.assert_allclose(regularization_rate(w, second_moment), alpha)
    # Non-zero-mean data: the uncentred alpha is strictly larger than the centred one.
    assert np.all(alpha > centred)


def test_alpha_moving_estimates_second_moment_of_projection():
    rng = np.random.default_rng(3)
    z = rng.normal(loc=2.0, scale=3.0, size=(200_000, 4))
    bias = np.array([0.5, -1, 0, 3])
    out = z + bias
    estimate = measures.alpha_moving(out.mean(0), out.var(0), bias)
    np.testing.assert_allclose(estimate, np.sqrt((z**2).mean(0)), rtol=1e-10)


def test_node_norms_and_table_columns():
    p = random_pair()
    l1, l2 = measures.node_norms(p["kernel"])
    np.testing.assert_allclose(l1, np.linalg.norm(p["kernel"], ord=1, axis=0))
    np.testing.assert_allclose(l2, np.linalg.norm(p["kernel"], axis=0))
    table = measures.node_table(**p, alpha=np.ones(5), alpha_centered=np.ones(5))
    assert tuple(table) == measures.NODE_COLUMNS
    summary = measures.summarize(table, prefix="output_")
    assert summary["output_l2_mean"] == pytest.approx(l2.mean())
    assert summary["output_alpha_std"] == 0.0


def test_alphas_from_moments_rejects_empty():
    with pytest.raises(ValueError, match="count must be >= 1"):
        measures.alphas_from_moments(0, np.zeros(2), np.zeros(2))


def test_mean_square_without_a_float64_copy():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(500, 28, 28)).astype(np.uint8)
    exact = float((pixels.astype(np.int64) ** 2).sum()) / pixels.size
    assert measures.mean_square(pixels) == exact
    noisy = pixels.astype(np.float32) + rng.normal(size=pixels.shape).astype(np.float32)
    expected = float(np.mean(np.square(noisy, dtype=np.float64)))
    assert measures.mean_square(noisy) == pytest.approx(expected, rel=1e-12)
