"""Per-node quantities of a Dense+BN pair, as pure NumPy functions.

This is where alpha is computed. For node j of a Dense layer with kernel column `w_j`
and the inputs `x` that enter that layer:

- alpha: `sqrt(mean_x (w_j^T x)^2) = sqrt(w_j^T R w_j)` with the uncentred
  `R = E[x x^T]` (the paper's Eq. 2-11), kernel only, no bias.
- alpha_centered: `sqrt(w_j^T Cov(x) w_j)`, the batch standard deviation BN divides by.
- alpha_moving: `sqrt(moving_variance_j + (moving_mean_j - b_j)^2)`, BN's own running
  estimate of `E[(w_j^T x)^2]` (its statistics see `w_j^T x + b_j`).
- effective (BN) weight: `w_bn_j = gamma_j * w_j / sqrt(moving_variance_j + epsilon)`,
  with folded bias, so that in inference mode `BN(Dense(x)) == x @ w_bn + b_bn`.

A convolution is the same with one "node" per output channel c: `w_c` is the kernel's
slice (kh, kw, cin) flattened, `x` runs over every input patch at every position of every
input (what BN's statistics average over), so `alpha_c = sqrt(E_p[(w_c . p)^2])`.
"""

from __future__ import annotations

import numpy as np

from keras_bnreg.theory.forms import regularization_rate
from keras_bnreg.theory.validation import quadratic

# Per-node columns in the order nodes.csv writes them.
NODE_COLUMNS = (
    "l1",
    "l2",
    "l1_bn",
    "l2_bn",
    "alpha",
    "alpha_centered",
    "alpha_moving",
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
)
# Per-node columns whose mean over nodes goes into the per-epoch history.
HISTORY_MEANS = ("l1", "l2", "l1_bn", "l2_bn", "alpha", "alpha_centered", "alpha_moving")
# Per-node columns whose spread over nodes also goes into the history.
HISTORY_STDS = ("alpha",)


def fold_batchnorm(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon):
    """Fold an inference-mode BN into the Dense layer before it.

    `BN(x @ w + b) = gamma * (x @ w + b - moving_mean) / sqrt(moving_variance + epsilon) + beta`
    `             = x @ w_bn + b_bn`, with
    `w_bn = w * gamma / sqrt(moving_variance + epsilon)` (column-wise) and
    `b_bn = (b - moving_mean) * gamma / sqrt(moving_variance + epsilon) + beta`.

    Args:
        kernel: Dense kernel, shape (d, n).
        bias: Dense bias, shape (n,), or None for a Dense layer without bias.
        gamma, beta, moving_mean, moving_variance: BN parameters, shape (n,).
        epsilon: BN's epsilon (scalar > 0).

    Returns:
        `(w_bn, b_bn)` with shapes (d, n) and (n,), float64.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (inputs, nodes). Received: shape {kernel.shape}")
    n = kernel.shape[1]
    arrays = {
        "gamma": gamma,
        "beta": beta,
        "moving_mean": moving_mean,
        "moving_variance": moving_variance,
        "bias": np.zeros(n) if bias is None else bias,
    }
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    for name, value in arrays.items():
        if value.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},). Received: shape {value.shape}")
    if np.any(arrays["moving_variance"] < 0):
        raise ValueError("moving_variance must be >= 0. Received: a negative entry")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0. Received: {epsilon}")
    scale = arrays["gamma"] / np.sqrt(arrays["moving_variance"] + epsilon)
    w_bn = kernel * scale
    b_bn = (arrays["bias"] - arrays["moving_mean"]) * scale + arrays["beta"]
    return w_bn, b_bn


def alphas_from_moments(count, sum_z, sum_z2):
    """alpha and centred alpha per node from projection moments streamed in chunks.

    With `z = x @ w_j` over the `count` inputs x, `sum_z = sum z` and `sum_z2 = sum z^2`:

    `alpha_j = sqrt(sum_z2_j / count)` (uncentred `sqrt(w_j^T R w_j)`) and
    `alpha_centered_j = sqrt(sum_z2_j / count - (sum_z_j / count)^2)`
    (`sqrt(w_j^T Cov(x) w_j)`, clipped at 0 against rounding).
    """
    if count < 1:
        raise ValueError(f"count must be >= 1. Received: {count}")
    second = np.asarray(sum_z2, dtype=np.float64) / count
    mean = np.asarray(sum_z, dtype=np.float64) / count
    return np.sqrt(second), np.sqrt(np.maximum(second - mean**2, 0.0))


def mean_square(x) -> float:
    """`mean(x^2)` in float64, in chunks of rows: no float64 copy of all of `x` (60,000
    digits: 376 MB and most of a second). Exact for uint8 pixels (integer partial sums)."""
    chunks = (x[start : start + 1024] for start in range(0, len(x), 1024))
    return sum(float(np.square(chunk, dtype=np.float64).sum()) for chunk in chunks) / x.size


def row_moments(chunks, product_dtype=np.float64):
    """`R = E[x x^T]`, `E[x]` and the count over the rows of 2-D chunks (float64 sums).

    Each chunk's `x^T x` is computed in `product_dtype` and added to float64 sums; `R` is
    returned exactly symmetric. float32 products are twice as fast (the monitor's set-up
    over 60,000 MNIST inputs: 74 GFLOP) and off by about 1e-7 relative per chunk: a Gram
    matrix then may show eigenvalues of -1e-7 times its norm, which
    `regularization_rate`'s check (exact to 1e-10) would refuse although `w^T R w` is as
    exact.

    Args:
        chunks: an iterable of arrays of shape (rows, d), e.g. an input streamed in chunks
            or the patches of a convolution's inputs.
        product_dtype: dtype of each chunk's product.

    Returns:
        `(second_moment, mean, count)` with shapes (d, d), (d,) and an int.
    """
    second = total = None
    count = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=product_dtype)
        if second is None:
            second, total = np.zeros((chunk.shape[1],) * 2), np.zeros(chunk.shape[1])
        second += chunk.T @ chunk
        total += chunk.sum(axis=0, dtype=np.float64)
        count += len(chunk)
    if count == 0:
        raise ValueError("row_moments needs at least one row. Received: none")
    second = (second + second.T) / 2
    return second / count, total / count, count


def input_moments(inputs, chunk_size=8192):
    """`R = E[x x^T]` and `E[x]` over the rows of `inputs`, streamed in chunks (float64 sums).

    Args:
        inputs: shape (N, d).
        chunk_size: rows per chunk (memory: chunk x d).

    Returns:
        `(second_moment, mean)` with shapes (d, d) and (d,).
    """
    inputs = np.asarray(inputs)
    if inputs.ndim != 2 or len(inputs) == 0:
        raise ValueError(f"inputs must be a non-empty 2-D array. Received: shape {inputs.shape}")
    chunks = (inputs[start : start + chunk_size] for start in range(0, len(inputs), chunk_size))
    second, mean, _ = row_moments(chunks)
    return second, mean


def kernel_columns(kernel):
    """A Dense or convolution kernel as one column per output node or channel.

    A Dense kernel (d, n) is returned as is; a convolution kernel (kh, kw, cin, cout) (or
    (k, cin, cout)) becomes (kh * kw * cin, cout) in C order, matching `conv_patches`, so
    that channel c's output at one position is `patch @ columns[:, c]`.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    return kernel.reshape(-1, kernel.shape[-1])


def same_padding(size, kernel_size, stride, dilation):
    """Padding `(before, after)` of one spatial axis under "same" (TensorFlow's rule).

    `out = ceil(size / stride)`, `total = max((out - 1) * stride + (k - 1) * dilation + 1 - size,
    0)`, `before = total // 2`, `after = total - before`.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_patches(images, kernel_size, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """Every input patch a 2-D convolution multiplies by its kernel, one row per position.

    For channels-last images (N, H, W, C) and a kernel (kh, kw, C, cout), output channel c at
    position (i, j) of image n is `conv_patches(...)[row] @ kernel_columns(kernel)[:, c]` (plus
    the bias), with rows ordered (n, i, j). Patch entries are ordered (kernel row, kernel
    column, channel), the C order of the kernel's first three axes. Zero padding as Keras's
    "same", none for "valid"; strides and dilation as in `keras.layers.Conv2D`.

    Args:
        images: shape (N, H, W, C).
        kernel_size, strides, dilation: pairs of ints.
        padding: "valid" or "same".

    Returns:
        Array of shape (N * out_h * out_w, kh * kw * C).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D (N, H, W, C). Received: shape {images.shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f'padding must be "valid" or "same". Received: {padding!r}')
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, strides, dilation
    if padding == "same":
        pads = [
            same_padding(images.shape[1 + a], kernel_size[a], strides[a], dilation[a])
            for a in (0, 1)
        ]
        images = np.pad(images, ((0, 0), pads[0], pads[1], (0, 0)))
    height, width = images.shape[1], images.shape[2]
    out_h = (height - (kh - 1) * dh - 1) // sh + 1
    out_w = (width - (kw - 1) * dw - 1) // sw + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"the kernel does not fit the images. Received: images {images.shape[1:3]}, "
            f"kernel {kernel_size}, dilation {dilation}"
        )
    offsets = [
        images[
            :,
            i * dh : i * dh + (out_h - 1) * sh + 1 : sh,
            j * dw : j * dw + (out_w - 1) * sw + 1 : sw,
        ]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = np.stack(offsets, axis=3)  # (N, out_h, out_w, kh * kw, C)
    return patches.reshape(-1, kh * kw * images.shape[3])


def alphas_from_input_moments(kernel, second_moment, mean, checked=False):
    """alpha and centred alpha per node from the input moments `R = E[x x^T]`, `E[x]`.

    `alpha_j = sqrt(w_j^T R w_j)`, `alpha_centered_j = sqrt(w_j^T R w_j - (E[x]^T w_j)^2)`
    (clipped at 0 against rounding): the same numbers `alphas_from_moments` gives from the
    projections, without touching the N inputs again.

    Args:
        kernel: (d, nodes).
        second_moment: `R` (d, d).
        mean: `E[x]` (d,).
        checked: `R` is known to be a second moment: a Gram matrix from `row_moments`
            (positive semi-definite by construction). The check, a
            Cholesky factorisation, costs more than the measurement itself.
    """
    if checked:  # regularization_rate's formula, without re-checking R
        alpha = np.sqrt(np.maximum(quadratic(np.asarray(kernel, np.float64), second_moment), 0))
    else:
        alpha = regularization_rate(kernel, second_moment)  # the verified form (Eq. 3, 8)
    mean_projection = np.asarray(mean, dtype=np.float64) @ np.asarray(kernel, dtype=np.float64)
    return alpha, np.sqrt(np.maximum(alpha**2 - mean_projection**2, 0.0))


def alpha_moving(moving_mean, moving_variance, bias=None):
    """BN's running estimate of alpha: `sqrt(moving_variance + (moving_mean - b)^2)`.

    BN's statistics see `w^T x + b`, so `moving_mean - b` estimates `E[w^T x]` and
    `moving_variance + (moving_mean - b)^2` estimates `E[(w^T x)^2]`.
    """
    moving_mean = np.asarray(moving_mean, dtype=np.float64)
    bias = np.zeros_like(moving_mean) if bias is None else np.asarray(bias, np.float64)
    return np.sqrt(np.asarray(moving_variance, dtype=np.float64) + (moving_mean - bias) ** 2)


def node_norms(kernel):
    """L1 and L2 norm of each node's weight vector (each column of `kernel`)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    return np.abs(kernel).sum(axis=0), np.sqrt((kernel**2).sum(axis=0))


def node_table(
    kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon, alpha, alpha_centered
):
    """All per-node columns of NODE_COLUMNS for one Dense+BN pair, as float64 arrays.

    A convolution kernel (kh, kw, cin, cout) is read as one column per output channel
    (`kernel_columns`): its norms and BN folding are per channel, like a Dense node's.
    """
    kernel = kernel_columns(kernel)
    w_bn, _ = fold_batchnorm(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon)
    l1, l2 = node_norms(kernel)
    l1_bn, l2_bn = node_norms(w_bn)
    return {
        "l1": l1,
        "l2": l2,
        "l1_bn": l1_bn,
        "l2_bn": l2_bn,
        "alpha": np.asarray(alpha, dtype=np.float64),
        "alpha_centered": np.asarray(alpha_centered, dtype=np.float64),
        "alpha_moving": alpha_moving(moving_mean, moving_variance, bias),
        "gamma": np.asarray(gamma, dtype=np.float64),
        "beta": np.asarray(beta, dtype=np.float64),
        "moving_mean": np.asarray(moving_mean, dtype=np.float64),
        "moving_variance": np.asarray(moving_variance, dtype=np.float64),
    }


def summarize(table, prefix=""):
    """Scalar summaries over nodes for the history: `<prefix><col>_mean`, `alpha_std`."""
    out = {f"{prefix}{col}_mean": float(np.mean(table[col])) for col in HISTORY_MEANS}
    out.update({f"{prefix}{col}_std": float(np.std(table[col])) for col in HISTORY_STDS})
    return out
