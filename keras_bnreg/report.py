"""REPORT.md: the studies' sections assembled, after the runs each study asked for are chosen.

Every table, figure and section comes from a study module (`keras_bnreg.studies`); this
module only reads the run directories once, selects for each study the runs its recorded
settings ask for, lists every run it leaves out and why, and writes the report.
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_bnreg import files, paper, render
from keras_bnreg.studies import STUDIES, stats
from keras_bnreg.studies.runs import read_runs, select
from keras_bnreg.studies.settings import infer_settings, read_requests, settings_from_record
from keras_bnreg.theory import plots as theory_plots

SHOWN_LEFT_OUT = 20  # run directories listed by name in the report; the rest are counted


def settings_for(name, out, runs, record):
    """The settings whose configs decide `name`'s runs: the last command that ran it, else
    Table I's (Fig. 2 and (d) read Table I's runs), else any recorded study's; a damaged
    record is skipped. Legacy directories without a record: the settings inferred from the
    runs (None when there are none)."""
    for key in dict.fromkeys((name, "table1", *record)):
        if key in record:
            try:
                return settings_from_record(out, record[key])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
    own = [run for run in runs if run.study == name]
    return infer_settings(out, own or [run for run in runs if run.study == "table1"] or runs)


def choose_runs(out, runs) -> tuple[dict, dict]:
    """Study name -> the runs its settings ask for; run name -> why it was left out."""
    record = read_requests(out)
    chosen, reasons = {}, {}
    for name, module in STUDIES.items():
        if hasattr(module, "USES"):  # it reads the runs of the studies it names
            chosen[name] = [run for used in module.USES for run in chosen.get(used, [])]
            continue
        settings = settings_for(name, out, runs, record)
        if settings is None:
            chosen[name] = []
            continue
        chosen[name], left_out = select(runs, module.configs(settings))
        reasons.update(left_out)
    used = {run.name for group in chosen.values() for run in group}
    for run in runs:
        if run.name not in used and run.name not in reasons:
            reasons[run.name] = run.problem or (
                "belongs to no study" if run.study is None else "not asked for by any study"
            )
    return chosen, {name: why for name, why in reasons.items() if name not in used}


def build_outputs(out) -> list[Path]:
    """Rebuild every table, figure and REPORT.md under `out` from `out/runs`; no training.

    Returns the files written. Studies with no usable runs are left out of the report.
    """
    out = Path(out)
    runs = read_runs(out / "runs")
    if not runs:
        raise ValueError(f"no finished runs under {out / 'runs'}: run a study first")
    chosen, left_out = choose_runs(out, runs)
    if not any(run.completed for group in chosen.values() for run in group):
        raise ValueError(
            f"no completed run under {out / 'runs'} that a study can use "
            f"({len(runs)} run directories: " + _status_counts(runs) + ")"
        )
    written, sections = [], []
    for name, module in STUDIES.items():
        text, paths = module.section(chosen[name], out)
        if text:
            sections.append(text.rstrip())
            written += paths
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
        f"- Protocol: batch {config.get('batch_size')}, {config.get('optimizer')} lr "
        f"{config.get('lr')}, init std {config.get('init_std')}, BN epsilon "
        f"{config.get('bn_epsilon')} unless a study varies them (the paper states no epoch "
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
