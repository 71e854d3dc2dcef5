"""The paper's experiments and the ablations, each as a list of RunConfigs.

Every run of every study is an ordinary `experiment.run`; a study only decides which
configs to run and names them, so that runs shared between studies (Fig. 2 and ablation
(a) reuse Table I's runs) are trained once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keras_bnreg import paper
from keras_bnreg.config import RunConfig

EPSILONS = (1e-5, 1e-3, 1e-1)  # ablation (a); 1e-3 is Keras's default and Table I's runs
SMALL_INIT = 1e-4  # ablation (c)
EQUIVALENCE_AMPLITUDES = (2.0, 3.0, 4.0)  # ablation (e)


@dataclass(frozen=True)
class Settings:
    """What every study shares."""

    out: str = "results"  # results directory; runs go to <out>/runs
    data: str = "auto"
    epochs: int = 10
    seeds: int = 5  # seeds 0 .. seeds-1
    hidden: tuple[int, ...] = (300,)

    @property
    def runs_dir(self) -> Path:
        return Path(self.out) / "runs"

    def config(self, name: str, save_model: bool = False, **changes) -> RunConfig:
        shared = {
            "data": self.data,
            "epochs": self.epochs,
            "hidden": self.hidden,
            "out": str(self.runs_dir),
            "models_dir": str(Path(self.out) / "models"),
        }
        return RunConfig(**{**shared, **changes}, save_model=save_model, run_name=name)


def table1(settings: Settings) -> list[RunConfig]:
    """Amplitudes 2..6 (clean data), seeds 0..n-1."""
    return [
        settings.config(f"table1_amp{a:g}_seed{s}", amplitude=a, seed=s)
        for a in paper.TABLE1_AMPLITUDES
        for s in range(settings.seeds)
    ]


def table2(settings: Settings) -> list[RunConfig]:
    """Amplitude 1 with Gaussian noise at SNR 100, 10, 1, 0.5, seeds 0..n-1."""
    return [
        settings.config(f"table2_snr{snr:g}_seed{s}", amplitude=1.0, snr=snr, seed=s)
        for snr in paper.TABLE2_SNRS
        for s in range(settings.seeds)
    ]


def fig2(settings: Settings) -> list[RunConfig]:
    """Table I's seed-0 runs: the per-node alpha at each amplitude."""
    return [c for c in table1(settings) if c.seed == 0]


def ablations(settings: Settings) -> list[RunConfig]:
    """(a) epsilon, (b) optimizer, (c) init scale over the amplitude sweep; (e) equivalence.

    (d) needs no runs of its own: it reads Table I's runs (final and per-epoch values).
    """
    configs = table1(settings)  # (a) at epsilon 1e-3, and (b), (c), (d)'s reference
    for a in paper.TABLE1_AMPLITUDES:
        for s in range(settings.seeds):
            for epsilon in EPSILONS:
                if epsilon != 1e-3:
                    configs.append(
                        settings.config(
                            f"abl_eps{epsilon:g}_amp{a:g}_seed{s}",
                            amplitude=a,
                            seed=s,
                            bn_epsilon=(epsilon,),
                        )
                    )
            configs.append(
                settings.config(f"abl_sgd_amp{a:g}_seed{s}", amplitude=a, seed=s, optimizer="sgd")
            )
            configs.append(
                settings.config(
                    f"abl_init{SMALL_INIT:g}_amp{a:g}_seed{s}",
                    amplitude=a,
                    seed=s,
                    init_std=SMALL_INIT,
                )
            )
    return configs + equivalence(settings)


def equivalence(
    settings: Settings, epsilon: float = 1e-3, amplitudes=EQUIVALENCE_AMPLITUDES
) -> list[RunConfig]:
    """(e) amplitude a with first-layer epsilon e == amplitude 1 with e / a^2 (seed 0).

    Per amplitude a: `abl_equiv_amp<a>` (amplitude a, epsilons (e, e)) and
    `abl_equiv_amp<a>_as_amp1` (amplitude 1, epsilons (e / a^2, e)); plus the
    non-equivalent reference `abl_equiv_amp1` (amplitude 1, epsilons (e, e)).
    """
    n_bn = len(settings.hidden) + 1
    rest = (epsilon,) * (n_bn - 1)

    def config(name, **changes):  # the kernels are compared, so the models are kept
        return settings.config(name, save_model=True, **changes)

    configs = [config("abl_equiv_amp1", amplitude=1.0, bn_epsilon=(epsilon, *rest))]
    for a in amplitudes:
        configs.append(config(f"abl_equiv_amp{a:g}", amplitude=a, bn_epsilon=(epsilon, *rest)))
        configs.append(
            config(f"abl_equiv_amp{a:g}_as_amp1", amplitude=1.0, bn_epsilon=(epsilon / a**2, *rest))
        )
    return configs


BASELINE_AMPLITUDES = (1.0, 3.0, 6.0)
L2_RATES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
BASELINE_LR = 1e-3  # Adam 0.1 is the paper's rate *with* BN; without BN it is not a fair baseline
VALIDATION_FRACTION = 0.1  # the L2 rate is chosen on this held-out part of the training split
DEPTHS = (1, 2, 4)


def baseline(settings: Settings) -> list[RunConfig]:
    """The MLP without BN, explicit L2 over a log grid of rates, at several amplitudes;
    and the BN network on the same split. Every run validates on a held-out part of the
    training split, so the rate is chosen without the test set."""
    configs = []
    for a in BASELINE_AMPLITUDES:
        for s in range(settings.seeds):
            for rate in L2_RATES:
                configs.append(
                    settings.config(
                        f"base_l2{rate:g}_amp{a:g}_seed{s}",
                        amplitude=a,
                        seed=s,
                        batchnorm=False,
                        l2=rate,
                        lr=BASELINE_LR,
                        validation_fraction=VALIDATION_FRACTION,
                    )
                )
            configs.append(
                settings.config(
                    f"base_bn_amp{a:g}_seed{s}",
                    amplitude=a,
                    seed=s,
                    validation_fraction=VALIDATION_FRACTION,
                )
            )
    return configs


def depth(settings: Settings) -> list[RunConfig]:
    """The amplitude sweep with 1, 2 and 4 hidden layers of the first hidden width.

    Depth 1 is Table I's own runs (same names and configs, so they are trained once).
    """
    width = settings.hidden[0]
    configs = [c for c in table1(settings)]
    for layers in DEPTHS:
        if layers == 1:
            continue
        for a in paper.TABLE1_AMPLITUDES:
            for s in range(settings.seeds):
                configs.append(
                    settings.config(
                        f"depth{layers}_amp{a:g}_seed{s}",
                        amplitude=a,
                        seed=s,
                        hidden=(width,) * layers,
                    )
                )
    return configs


STUDIES = {
    "table1": (table1, "Table I: amplitude 2..6"),
    "table2": (table2, "Table II: SNR 100, 10, 1, 0.5 at amplitude 1"),
    "fig2": (fig2, "Fig. 2: per-node alpha of the hidden nodes"),
    "ablations": (ablations, "what explains the numbers: epsilon, optimizer, init, equivalence"),
    "baseline": (
        baseline,
        "the MLP without BN, explicit L2 over a grid, rate chosen on validation",
    ),
    "depth": (depth, "the amplitude sweep at 1, 2 and 4 hidden layers"),
}
