"""Rule gex_qc_table: qc.tsv, one row per sample."""

import logging

import pandas as pd

from cartrack.design import InputError
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
qc = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input.summaries])
meta = snakemake.params.sheet[["patient", "day", "tissue"]]
qc = qc.join(meta, on="sample")
dropped = qc.loc[qc["status"] == "dropped", "sample"].tolist()
if dropped:
    logging.getLogger("cartrack").warning("samples dropped by QC: %s", ", ".join(dropped))
with exit_on_input_error(snakemake.log[0]):
    if len(dropped) == len(qc):
        raise InputError(
            "QC removed every cell of every sample (see qc.tsv's medians in the logs under "
            "logs/gex_qc/): check the qc thresholds against your data"
        )
first = ["sample", "patient", "day", "tissue"]
write_tsv(qc[first + [c for c in qc.columns if c not in first]], snakemake.output.table)
