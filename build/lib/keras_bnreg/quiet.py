"""Silence TensorFlow's start-up noise, measured with TF 2.21, never its real errors.

On a CPU-only machine `import tensorflow` prints, twice, before `TF_CPP_MIN_LOG_LEVEL` takes
effect (absl's C++ logging is not initialised yet):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU ...

`tensorflow_start_up` imports TensorFlow with file descriptor 2 pointed at a temp file, then
writes back every line that is not one of these known start-up messages (`KNOWN_NOISE`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

KNOWN_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} .*\] Could not find cuda drivers on your machine"),
    re.compile(r"^[IWE]\d{4} .*\] (failed call to cuInit|Unable to register cu(DNN|FFT|BLAS))"),
    re.compile(r"^[IW]\d{4} .*\] oneDNN custom operations are on"),
    re.compile(r"^[IW]\d{4} .*\] This TensorFlow binary is optimized to use available CPU"),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild"),
)


def tensorflow_start_up() -> None:
    """Import TensorFlow (if not yet imported) without its known start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with filtered_stderr():
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def filtered_stderr(noise=KNOWN_NOISE):
    """Send file descriptor 2 (C++ and Python stderr) to a temp file inside the block, then
    write back every line that matches none of `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines() if not _is_noise(line, noise)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _is_noise(line, noise) -> bool:
    return any(pattern.search(line) for pattern in noise)
