"""The paper's Section III: closed forms, their two-way checks, and Fig. 1.

- `forms`: the closed forms of BN (Eq. 1-11, 15-19), NumPy/SciPy only.
- `ridge`: L2 regularisation of a quadratic loss (Eq. 12-14) and Fig. 1's geometry.
- `checks`, `noise_checks`: each form against an independent computation (Keras, SLSQP,
  a linear solve, MNIST's data, Monte Carlo); `rows`: one row of that table.
- `plots`: Fig. 1 (matplotlib).

`python -m keras_bnreg.theory` prints every check; docs/THEORY.md explains the findings.
Importing this package loads nothing but this docstring.
"""
