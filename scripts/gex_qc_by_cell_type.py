"""Rule gex_qc_by_cell_type: qc_by_cell_type.tsv from the per-sample QC cell tables."""

import pandas as pd

from cartrack.logs import setup_logging
from cartrack.qc import qc_by_cell_type
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
cells = pd.concat(
    [
        pd.read_csv(p, sep="\t", dtype={"qc_cell_type": str}).assign(sample=s)
        for s, p in zip(snakemake.params.samples, snakemake.input.cells, strict=True)
    ]
)
write_tsv(qc_by_cell_type(cells, snakemake.params.sheet), snakemake.output.table)
