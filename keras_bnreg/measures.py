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

The effective step: with BN right after the layer, the loss ignores the scale of `w_j`, so
what training changes is its direction (van Laarhoven 2017; Hoffer et al. 2018; Li & Arora
2020). Per node and epoch:

- angular_update: the angle (radians) between `w_j` at the start and at the end of the epoch.
- effective_lr: the step size the optimizer applies to the direction. For SGD the closed form
  `lr / ((1 - momentum) ||w_j||^2)` (`||w_j||` at the end of the epoch; momentum's
  steady-state factor `1 / (1 - momentum)`, 1 without momentum); for adaptive optimizers
  (Adam, RMSprop, ...) there is none, and it is the measured angular update per step,
  `angular_update / steps` (a lower bound on the mean angle of a step, since steps need not
  turn the same way).
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
    "angular_update",
    "effective_lr",
)
# Per-node columns whose mean over nodes goes into the per-epoch history.
HISTORY_MEANS = (
    "l1",
    "l2",
    "l1_bn",
    "l2_bn",
    "alpha",
    "alpha_centered",
    "alpha_moving",
    "angular_update",
    "effective_lr",
)
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


class RowMoments:
    """Running sums for `R = E[x x^T]`, `E[x]` and the count over rows added chunk by chunk.

    Each chunk's `x^T x` is computed in `product_dtype` and added to float64 sums; `R` is
    returned exactly symmetric. float32 products are twice as fast (the monitor's set-up
    over 60,000 MNIST inputs: 74 GFLOP) and off by about 1e-7 relative per chunk: a Gram
    matrix then may show eigenvalues of -1e-7 times its norm, which
    `regularization_rate`'s check (exact to 1e-10) would refuse although `w^T R w` is as
    exact.
    """

    def __init__(self, product_dtype=np.float64):
        self.product_dtype = product_dtype
        self.second = self.total = None
        self.count = 0

    def add(self, rows) -> None:
        """Add the rows of a 2-D array (rows, d)."""
        rows = np.asarray(rows, dtype=self.product_dtype)
        if self.second is None:
            self.second, self.total = np.zeros((rows.shape[1],) * 2), np.zeros(rows.shape[1])
        self.second += rows.T @ rows
        self.total += rows.sum(axis=0, dtype=np.float64)
        self.count += len(rows)

    def result(self):
        """`(second_moment, mean, count)` with shapes (d, d), (d,) and an int."""
        if self.count == 0:
            raise ValueError("row_moments needs at least one row. Received: none")
        second = (self.second + self.second.T) / 2
        return second / self.count, self.total / self.count, self.count


def row_moments(chunks, product_dtype=np.float64):
    """`R = E[x x^T]`, `E[x]` and the count over the rows of 2-D chunks (`RowMoments`).

    Args:
        chunks: an iterable of arrays of shape (rows, d), e.g. an input streamed in chunks
            or the patches of a convolution's inputs.
        product_dtype: dtype of each chunk's product.

    Returns:
        `(second_moment, mean, count)` with shapes (d, d), (d,) and an int.
    """
    moments = RowMoments(product_dtype)
    for chunk in chunks:
        moments.add(chunk)
    return moments.result()


class ProjectionMoments:
    """Running float64 sums of `z` and `z^2` per node over rows of projections `z = x @ w`
    added chunk by chunk; `alphas()` gives `alphas_from_moments` of them."""

    def __init__(self):
        self.count, self.sum_z, self.sum_z2 = 0, 0.0, 0.0

    def add(self, projections) -> None:
        """Add the rows of a 2-D array (rows, nodes) of projections."""
        z = np.asarray(projections, dtype=np.float64)
        self.count += z.shape[0]
        self.sum_z = self.sum_z + z.sum(axis=0)
        self.sum_z2 = self.sum_z2 + np.einsum("ij,ij->j", z, z)

    def alphas(self):
        return alphas_from_moments(self.count, self.sum_z, self.sum_z2)


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


def angular_update(start, end):
    """Angle (radians) between each node's weight vector at `start` and at `end`.

    `2 atan2(||u0 - u1||, ||u0 + u1||)` with the unit vectors `u = w / ||w||`: exact for
    tiny angles, where `arccos(u0 . u1)` loses half its digits. NaN for a zero vector.

    Args:
        start, end: kernels of the same shape, (d, nodes) or a convolution's.
    """
    units = []
    for kernel in (start, end):
        columns = kernel_columns(kernel)
        norms = np.sqrt((columns**2).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            units.append(columns / np.where(norms > 0, norms, np.nan))
    difference = np.sqrt(((units[0] - units[1]) ** 2).sum(axis=0))
    total = np.sqrt(((units[0] + units[1]) ** 2).sum(axis=0))
    return 2 * np.arctan2(difference, total)


def sgd_effective_lr(learning_rate, kernel, momentum=0.0):
    """SGD's step on each node's direction: `lr / ((1 - momentum) ||w_j||^2)`.

    With BN after the layer, the gradient is orthogonal to `w_j` and scales as
    `1 / ||w_j||`, so one step turns `w_j` by `atan(lr ||g_j|| / ||w_j||)`, i.e. by
    `lr / ||w_j||^2` times the gradient with respect to the direction; momentum `m`
    multiplies the steady-state step by `1 / (1 - m)`.
    """
    columns = kernel_columns(kernel)
    with np.errstate(divide="ignore"):
        return learning_rate / ((1.0 - momentum) * (columns**2).sum(axis=0))


def effective_step(start, end, steps, sgd=None):
    """`{"angular_update", "effective_lr"}` per node over an epoch (see the module's notes).

    Args:
        start, end: the layer's kernel at the start and at the end of the epoch.
        steps: optimizer steps taken in between.
        sgd: `(learning_rate, momentum)` for SGD (the closed form); None for an adaptive
            optimizer (the measured angular update per step).
    """
    angle = angular_update(start, end)
    if sgd is not None:
        effective = sgd_effective_lr(sgd[0], end, sgd[1])
    else:
        effective = angle / steps if steps > 0 else np.full_like(angle, np.nan)
    return {"angular_update": angle, "effective_lr": np.asarray(effective, dtype=np.float64)}


def node_table(
    kernel,
    bias,
    gamma,
    beta,
    moving_mean,
    moving_variance,
    epsilon,
    alpha,
    alpha_centered,
    step=None,
):
    """All per-node columns of NODE_COLUMNS for one Dense+BN pair, as float64 arrays.

    A convolution kernel (kh, kw, cin, cout) is read as one column per output channel
    (`kernel_columns`): its norms and BN folding are per channel, like a Dense node's.
    `step`: `effective_step`'s columns over the epoch (None: NaN, e.g. a single measurement).
    """
    kernel = kernel_columns(kernel)
    nan = np.full(kernel.shape[1], np.nan)
    step = step or {"angular_update": nan, "effective_lr": nan}
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
        "angular_update": np.asarray(step["angular_update"], dtype=np.float64),
        "effective_lr": np.asarray(step["effective_lr"], dtype=np.float64),
    }


def summarize(table, prefix=""):
    """Scalar summaries over nodes for the history: `<prefix><col>_mean`, `alpha_std`."""
    out = {f"{prefix}{col}_mean": float(np.mean(table[col])) for col in HISTORY_MEANS}
    out.update({f"{prefix}{col}_std": float(np.std(table[col])) for col in HISTORY_STDS})
    return out
