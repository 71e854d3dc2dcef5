"""A row of the theory table (closed form A against an independent B), and the table itself."""

from __future__ import annotations

import dataclasses

import numpy as np

MONTE_CARLO_SE = 5.0  # a Monte Carlo row passes when every entry is within 5 standard errors


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of `python -m keras_bnreg.theory`: a closed form A against an independent B.

    `max_rel_error = max |A - B| / max |B|`. A check passes when `max_rel_error <= tolerance`;
    on Monte Carlo rows when every entry is within 5 standard errors (`tolerance` then shows
    that bound at the loosest entry, on the same scale). On a finding row A is a relation as
    the paper prints it, or used outside its assumption: it is confirmed (`passed`) when
    `max_rel_error > tolerance` (and beyond 5 standard errors on Monte Carlo rows), and
    `corrected_by` names the row that checks the corrected relation.
    """

    name: str  # short id, e.g. "eq11-minimiser"
    equation: str  # the paper's equation, e.g. "Eq. 11"
    compared: str  # what A and B are
    value_a: str  # A at the entry where |A - B| is largest, shortened
    value_b: str  # B at that entry
    max_abs_error: float  # max |A - B|
    max_rel_error: float  # max |A - B| / max |B|
    tolerance: float  # bound on max_rel_error (a lower bound on finding rows)
    passed: bool  # the check held, or the finding was confirmed
    finding: bool = False  # A is the printed relation, expected to be off
    corrected_by: str = ""  # name of the row that checks the corrected relation
    note: str = ""  # context: sizes, data, worst standard-error multiple

    @property
    def status(self) -> str:
        if not self.passed:
            return "FAIL"
        return "FINDING" if self.finding else "PASS"


def compare(
    name,
    equation,
    compared,
    a,
    b,
    tolerance,
    *,
    finding=False,
    corrected_by="",
    note="",
    standard_error=None,
) -> Check:
    """A `Check` from two computations A and B (broadcast to a common shape)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    difference = np.abs(a - b)
    scale = max(float(np.max(np.abs(b))), np.finfo(float).tiny)
    max_abs = float(np.max(difference))
    max_rel = max_abs / scale
    if standard_error is None:
        passed = max_rel > tolerance if finding else max_rel <= tolerance
    else:
        bound = MONTE_CARLO_SE * np.broadcast_to(np.asarray(standard_error, np.float64), a.shape)
        multiple = float(np.max(difference / bound)) * MONTE_CARLO_SE
        within = bool(np.all(difference <= bound))
        if finding:
            passed = max_rel > tolerance and not within
        else:
            tolerance, passed = float(np.max(bound)) / scale, within
        worst = f"worst |A-B| = {multiple:.2f} SE"
        note = f"{note}; {worst}" if note else worst
    worst_entry = np.unravel_index(np.argmax(difference), difference.shape)
    return Check(
        name=name,
        equation=equation,
        compared=compared,
        value_a=f"{a[worst_entry]:.5g}",
        value_b=f"{b[worst_entry]:.5g}",
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        tolerance=float(tolerance),
        passed=bool(passed),
        finding=finding,
        corrected_by=corrected_by,
        note=note,
    )


def format_checks(checks) -> str:
    """The table `python -m keras_bnreg.theory` prints, then one line of context per row.

    Args:
        checks: rows from `run_checks()`.

    Returns:
        The text, one table line per check, then the notes.
    """
    number = {check.name: index for index, check in enumerate(checks, start=1)}
    header = (
        f"{'#':>2}  {'status':<7}  {'eq.':<7}  {'A vs B':<54}  {'A*':>10}  {'B*':>10}"
        f"  {'max abs':>8}  {'max rel':>8}  {'tol':>9}"
    )
    lines = [header, "-" * len(header)]
    for index, check in enumerate(checks, start=1):
        tolerance = f"{'>' if check.finding else '<='}{check.tolerance:.0e}"
        lines.append(
            f"{index:>2}  {check.status:<7}  {check.equation:<7}  {check.compared:<54.54}  "
            f"{check.value_a:>10}  {check.value_b:>10}  {check.max_abs_error:>8.1e}  "
            f"{check.max_rel_error:>8.1e}  {tolerance:>9}"
        )
    lines += ["", "Notes (row: context; findings name the row that checks the corrected form):"]
    for index, check in enumerate(checks, start=1):
        corrected = f" [corrected: row {number[check.corrected_by]}]" if check.corrected_by else ""
        lines.append(f"{index:>2}  {check.name}: {check.note}{corrected}")
    return "\n".join(lines)


LEGEND = """\
Section III of Annamalai & Thakur, each equation computed two independent ways.
A = the closed form (on FINDING rows: as the paper prints it, or outside its assumption);
B = an independent computation (Keras, SciPy's SLSQP, a linear solve, the data, Monte Carlo).
max rel = max|A - B| / max|B|.  PASS: max rel <= tol (Monte Carlo: every entry within 5 SE).
FINDING: the printed relation is off by more than tol; the corrected relation is checked in
the row its note names.  FAIL: a check that does not hold, or a finding that did not appear."""
