"""Optional features and the pip extra that installs each (pyproject.toml's
`[project.optional-dependencies]`): a feature whose package is missing stops with one line
naming the extra, before it starts work.

The base install (Keras 3, NumPy, SciPy) gives the layers, the monitor, `measure_model` and
loading saved models on any Keras backend. Imports nothing but the standard library.
"""

from __future__ import annotations

import importlib.util

# module -> (the distribution that provides it, the extra that installs it)
PROVIDERS = {
    "tensorflow": ("tensorflow", "tf"),
    "tensorflow_datasets": ("tensorflow-datasets", "tf"),
    "mlxtend": ("mlxtend", "tf"),
    "matplotlib": ("matplotlib", "tf"),
    "tqdm": ("tqdm", "tf"),
    "threadpoolctl": ("threadpoolctl", "tf"),
    "ray": ("ray", "ray"),
    "tensorboard": ("tensorboard", "tensorboard"),
}


class MissingExtra(ImportError, ValueError):
    """A feature's package is not installed; the message is one line naming the extra.

    Also a ValueError, as every bad-input error of this package: the command lines print
    it as one `error: ...` line with exit code 2."""


def missing(*modules: str) -> list[str]:
    """The modules among `modules` that cannot be imported here."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require(feature: str, *modules: str) -> None:
    """Raise `MissingExtra` unless every module in `modules` is installed.

    Args:
        feature: what needs them, as the user knows it (`"train.py"`, `"--data bundled"`).
        modules: importable module names, keys of `PROVIDERS`.
    """
    absent = missing(*modules)
    if not absent:
        return
    distributions = ", ".join(PROVIDERS[name][0] for name in absent)
    extras = ",".join(dict.fromkeys(PROVIDERS[name][1] for name in absent))
    raise MissingExtra(
        f"{feature} needs {distributions}, which is not installed: "
        f"pip install 'keras-bnreg[{extras}]'"
    )
