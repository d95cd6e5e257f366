"""Rule gex_qc_table: qc.tsv, one row per sample."""

import pandas as pd

from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
qc = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input.summaries])
meta = snakemake.params.sheet[["patient", "day", "tissue"]]
qc = qc.join(meta, on="sample")
first = ["sample", "patient", "day", "tissue"]
write_tsv(qc[first + [c for c in qc.columns if c not in first]], snakemake.output.table)
