"""The studies: one module per study, each holding its run configs, a pure analysis
`runs -> rows`, its report section and its figures.

A study module defines `NAME`, `DESCRIPTION`, `configs(settings) -> [RunConfig]`,
`analyse(runs) -> [row]` and `section(runs, out) -> (markdown, files written)`. A study
that only reads other studies' runs names them in `USES`: it is given the runs those
studies' recorded settings select. Adding a study means adding its module and one line in
`STUDIES`.
"""

from keras_bnreg.studies import (
    ablations,
    baseline,
    claims,
    cnn,
    depth,
    fig2,
    identity,
    readings,
    table1,
    table2,
)
from keras_bnreg.studies.settings import Settings

STUDIES = {
    module.NAME: module
    for module in (
        table1,
        table2,
        fig2,
        ablations,
        baseline,
        depth,
        readings,
        identity,
        claims,
        cnn,
    )
}

__all__ = ["STUDIES", "Settings"]
