"""The noise forms (Eq. 16-19) against Monte Carlo, on random data and on MNIST's digits."""

from __future__ import annotations

import numpy as np

from keras_bnreg.theory import forms, validation
from keras_bnreg.theory.rows import compare


def checks_eq16(rng):
    """Eq. 16 against Monte Carlo: 2e5 samples of a linear model with noisy inputs."""
    d, samples, sigma = 16, 200_000, 0.5
    factor = rng.normal(size=(d, d)) / np.sqrt(d)
    inputs = rng.normal(size=(samples, d)) @ factor.T + rng.normal(size=d)  # E[x] != 0
    targets = inputs @ rng.normal(size=d) + 0.5 * rng.normal(size=samples)
    kernel = rng.normal(size=(d, 4))
    noise_projection = rng.normal(scale=sigma, size=(samples, d)) @ kernel
    residual = inputs @ kernel - targets[:, None]
    excess = (residual + noise_projection) ** 2 - residual**2  # noisy minus clean error
    return [
        compare(
            "eq16-monte-carlo",
            "Eq. 16",
            "sigma^2 ||w||^2 vs MC E[err(x+xi)] - E[err(x)]",
            forms.input_noise_penalty(kernel, sigma),
            excess.mean(axis=0),
            None,
            standard_error=excess.std(axis=0) / np.sqrt(samples),
            note=f"2e5 samples, d = {d}, 4 w, sigma = {sigma}, E[x] != 0",
        )
    ]


def checks_eq17_to_19(digits, second_moment, rng, snr=1.0, gamma=1.5, samples=100_000):
    """Eq. 17-19: noisy MNIST digits by Monte Carlo, and Eq. 19 where it holds (R = lambda I)."""
    sigma = float(np.sqrt(digits.var(axis=0).mean() / snr))  # the project's SNR definition
    eigenvalues, eigenvectors = validation.eigh(second_moment)
    rank = int(np.sum(eigenvalues > validation.EIGEN_RTOL * eigenvalues[-1]))
    middle = len(eigenvalues) - rank // 2  # median of the non-zero eigenvalues
    kernel = np.column_stack(
        [rng.normal(size=(784, 8)), eigenvectors[:, middle], eigenvectors[:, -1]]
    )
    targets = digits @ rng.normal(size=784)
    targets /= np.sqrt(np.mean(targets**2))
    noisy_moment, noise_term, standard_error = _monte_carlo_noisy_digits(
        digits, kernel, targets, sigma, gamma, samples, rng
    )
    mean_eigenvalue = float(np.trace(second_moment) / 784)
    equal = np.full(
        kernel.shape[1], forms.bn_noise_penalty_equal_eigenvalues(mean_eigenvalue, sigma, gamma)
    )
    exact = forms.bn_noise_penalty(kernel, second_moment, sigma, gamma)
    ratio = equal / exact
    directions = "8 random w, R's median and top eigenvector"
    checks = [
        compare(
            "eq17-eigen",
            "Eq. 17",
            "R_n q_j = (lambda_j + sigma^2) q_j, MNIST R",
            forms.noisy_second_moment(second_moment, sigma) @ eigenvectors,
            eigenvectors * (eigenvalues + sigma**2),
            1e-10,
            note=f"sigma^2 = mean pixel variance / SNR = {sigma**2:.4f} (SNR {snr:g})",
        ),
        compare(
            "eq17-moment",
            "Eq. 17",
            "w^T (R + sigma^2 I) w vs MC E[(w^T x_n)^2], MNIST",
            validation.quadratic(kernel, forms.noisy_second_moment(second_moment, sigma)),
            noisy_moment[0],
            None,
            standard_error=noisy_moment[1],
            note=f"{samples:.0e} noisy digits drawn with replacement; {directions}",
        ),
        compare(
            "eq18-monte-carlo",
            "Eq. 18",
            "sigma^2 gamma^2 ||w||^2 / w^T R_n w vs MC",
            exact,
            noise_term,
            None,
            standard_error=standard_error,
            note=f"w_bn = gamma w / sqrt(MC E[(w^T x_n)^2]), gamma {gamma}; same {samples:.0e}",
        ),
        compare(
            "eq19-mnist",
            "Eq. 19",
            "equal lambda (= mean eigenvalue) vs MC, MNIST",
            equal,
            noise_term,
            0.1,
            finding=True,
            corrected_by="eq18-monte-carlo",
            standard_error=standard_error,
            note=(
                f"Eq. 19 / exact: random w {ratio[:8].min():.2f}-{ratio[:8].max():.2f}, "
                f"median eigvec {ratio[8]:.2f}, top eigvec {ratio[9]:.0f}; "
                f"exact for any R with lambda = w^T R w / w^T w"
            ),
        ),
    ]
    checks.append(check_eq19_isotropic(rng, gamma))
    checks += _checks_eq19_limits(mean_eigenvalue, gamma)
    return checks


def _monte_carlo_noisy_digits(digits, kernel, targets, sigma, gamma, samples, rng):
    """E[(w^T x_n)^2] and the noise term of Eq. 17 by sampling digits and Gaussian noise."""
    chunk = 12_500
    index = rng.integers(0, len(digits), samples)
    projections, targets = (digits @ kernel)[index], targets[index]
    noise = np.empty((samples, kernel.shape[1]))
    for start in range(0, samples, chunk):
        draw = rng.standard_normal((min(chunk, samples - start), digits.shape[1]))
        noise[start : start + chunk] = sigma * (draw @ kernel)
    noisy = (projections + noise) ** 2
    moment = (noisy.mean(axis=0), noisy.std(axis=0) / np.sqrt(samples))
    term, standard_error = _monte_carlo_noise_term(projections, noise, targets, gamma)
    return moment, term, standard_error


def _monte_carlo_noise_term(projections, noise, targets, gamma):
    """Estimate `E[(w_bn^T x_n - y)^2] - E[(w_bn^T x - y)^2]` with BN's normaliser from data.

    `w_bn = gamma w / s`, `s^2` the sample mean of `(w^T x_n)^2`. With `z = w^T x`,
    `u = w^T xi`, `t = y`, the estimate is `gamma^2 (m1 + 2 m2) / m4 - 2 gamma m3 / sqrt(m4)`
    for the sample means `m = (u^2, z u, t u, (z + u)^2)`; its standard error comes from the
    delta method.
    """
    t = targets[:, None]
    parts = np.stack([noise**2, projections * noise, t * noise, (projections + noise) ** 2])
    m1, m2, m3, m4 = parts.mean(axis=1)
    estimate = gamma**2 * (m1 + 2 * m2) / m4 - 2 * gamma * m3 / np.sqrt(m4)
    gradient = np.stack(
        [
            gamma**2 / m4,
            2 * gamma**2 / m4,
            -2 * gamma / np.sqrt(m4),
            -(gamma**2) * (m1 + 2 * m2) / m4**2 + gamma * m3 / m4**1.5,
        ]
    )
    influence = np.einsum("pk,pnk->nk", gradient, parts - parts.mean(axis=1, keepdims=True))
    return estimate, influence.std(axis=0) / np.sqrt(len(targets))


def check_eq19_isotropic(rng, gamma, d=32, eigenvalue=0.7, sigma=0.6, samples=200_000):
    """Eq. 19 where its assumption holds: x ~ N(0, lambda I), against Monte Carlo."""
    inputs = np.sqrt(eigenvalue) * rng.standard_normal((samples, d))
    kernel = rng.normal(size=(d, 4))
    targets = inputs @ rng.normal(size=d) / np.sqrt(d * eigenvalue)
    noise = sigma * rng.standard_normal((samples, d)) @ kernel
    term, standard_error = _monte_carlo_noise_term(inputs @ kernel, noise, targets, gamma)
    return compare(
        "eq19-equal-eigenvalues",
        "Eq. 19",
        "R = lambda I: sigma^2 gamma^2/(lambda+sigma^2) vs MC",
        np.full(4, forms.bn_noise_penalty_equal_eigenvalues(eigenvalue, sigma, gamma)),
        term,
        None,
        standard_error=standard_error,
        note=f"2e5 samples of x ~ N(0, {eigenvalue} I), d = {d}, 4 w, sigma {sigma}",
    )


def _checks_eq19_limits(eigenvalue, gamma):
    """The two limits printed after Eq. 19, against Eq. 19 evaluated there."""
    small, large = np.sqrt(1e-4 * eigenvalue), np.sqrt(1e4 * eigenvalue)
    at_small = forms.bn_noise_penalty_equal_eigenvalues(eigenvalue, small, gamma)
    at_large = forms.bn_noise_penalty_equal_eigenvalues(eigenvalue, large, gamma)
    return [
        compare(
            "eq19-low-noise-printed",
            "Eq. 19",
            "low noise: printed limit gamma^2/lambda vs Eq. 19",
            gamma**2 / eigenvalue,
            at_small,
            0.1,
            finding=True,
            corrected_by="eq19-low-noise",
            note="sigma^2 = 1e-4 lambda; the printed limit drops the factor sigma^2",
        ),
        compare(
            "eq19-low-noise",
            "Eq. 19",
            "low noise: sigma^2 gamma^2/lambda vs Eq. 19",
            small**2 * gamma**2 / eigenvalue,
            at_small,
            2e-4,
            note=f"sigma^2 = 1e-4 lambda, lambda = MNIST's mean eigenvalue {eigenvalue:.4f}",
        ),
        compare(
            "eq19-high-noise",
            "Eq. 19",
            "high noise: printed limit gamma^2 vs Eq. 19",
            gamma**2,
            at_large,
            2e-4,
            note="sigma^2 = 1e4 lambda; error ~ lambda/sigma^2 = 1e-4",
        ),
    ]
