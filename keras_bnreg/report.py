"""REPORT.md: the studies' sections assembled, after the runs each study asked for are chosen.

Every table, figure and section comes from a study module (`keras_bnreg.studies`); this
module only reads the run directories once, has `studies.plan.choose` select for each study
the runs its recorded settings ask for, lists every run left out and why, and writes the
report.
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_bnreg import files, paper, render
from keras_bnreg.studies import plan, registry, stats
from keras_bnreg.studies.runs import read_runs
from keras_bnreg.studies.settings import REQUESTED, read_requests

SHOWN_LEFT_OUT = 20  # run directories listed by name in the report; the rest are counted


def build_outputs(out) -> list[Path]:
    """Rebuild every table, figure and REPORT.md under `out` from `out/runs`; no training.

    Returns the files written. Studies with no usable runs are left out of the report.
    """
    out = Path(out)
    runs = read_runs(out / "runs")
    if not runs:
        raise ValueError(f"no finished runs under {out / 'runs'}: run a study first")
    record = read_requests(out)
    chosen, left_out = plan.choose(out, runs, record)
    if not any(run.completed for group in chosen.values() for run in group):
        no_record = "" if record else f"; no readable {REQUESTED} records what was asked for"
        raise ValueError(
            f"no completed run under {out / 'runs'} that a study can use "
            f"({len(runs)} run directories: " + _status_counts(runs) + no_record + ")"
        )
    written, sections = [], []
    for name, study in registry().items():
        text, paths = study.module.section(chosen[name], out)
        if text:
            sections.append(text.rstrip())
            written += paths
    from keras_bnreg.theory import plots as theory_plots  # matplotlib only when writing

    theory_plots.plot_fig1(out / "fig1.png")
    written.append(out / "fig1.png")
    header = setup_section(out, chosen, left_out)
    files.write_text(out / "REPORT.md", "\n\n".join([header, *sections]) + "\n")
    return written + [out / "REPORT.md"]


def _run_count(name, group) -> str:
    own = sum(run.study == name for run in group)
    shared = sorted({run.study for run in group if run.study != name})
    text = f"{own} runs of its own" if own else "no runs of its own"
    return text + (f", {len(group) - own} of {', '.join(shared)}" if shared else "")


def _status_counts(runs) -> str:
    counts = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def setup_section(out, chosen, left_out) -> str:
    """The report's head: data, protocol and versions of the runs used; the left-out runs;
    the verdict rules."""
    used = {run.name: run for group in chosen.values() for run in group}.values()
    completed = [run for run in used if run.completed]
    reference = completed[0]
    versions = reference.summary.get("versions", {})
    timings_path = Path(out) / "timings.json"
    try:
        timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    except ValueError:
        timings = {}
    config = reference.config
    lines = [
        "# Reproduction report",
        "",
        f"Paper: {paper.TITLE}.",
        "",
        "- Runs used, by study (data, epochs, seeds and widths read from the runs):",
        *(
            f"  - {name}: {_run_count(name, group)}; {render.caption(group)}"
            for name, group in chosen.items()
            if group
        ),
        f"- Protocol: batch {config['batch_size']}, {config['optimizer']} lr "
        f"{config['lr']}, init std {config['init_std']}, BN epsilon "
        f"{config['bn_epsilon']} unless a study varies them (the paper states no epoch "
        "count).",
        f"- Runs: {len(used)} used ({len(completed)} completed, "
        f"{sum(r.status == 'diverged' for r in used)} diverged: counted, never averaged); "
        f"compute {sum(r.summary.get('wall_seconds', 0.0) for r in used):.0f} s summed over "
        "runs.",
        "- Sweep wall times: "
        + (
            ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            if timings
            else "not recorded (report rebuilt from files)"
        ),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform"),
    ]
    if left_out:
        lines.append(
            f"- Left out: {len(left_out)} run directories that the recorded commands did not "
            "ask for (never averaged in):"
        )
        for name, why in sorted(left_out.items())[:SHOWN_LEFT_OUT]:
            lines.append(f"  - {name}: {why}")
        if len(left_out) > SHOWN_LEFT_OUT:
            lines.append(f"  - and {len(left_out) - SHOWN_LEFT_OUT} more")
    lines += ["", "Verdict rules: " + stats.VERDICT_RULES]
    return "\n".join(lines)
