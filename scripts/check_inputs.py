"""Rule check_inputs: design_checks.tsv from the design and the per-sample checks."""

import pandas as pd

from cartrack.checks import check_cohort
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
samples = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in smk.input.tables]
with exit_on_input_error(smk.log[0]):
    table = check_cohort(samples, design=smk.params.design.astype(str))
write_tsv(table, smk.output.table)
