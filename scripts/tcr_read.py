"""Rule tcr_read: one sample's T-cell V(D)J file -> results/tcr/read/{sample}.h5ad."""

from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.tcr import read_tcr

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
with exit_on_input_error(smk.log[0]):
    adata = read_tcr(
        smk.input.tcr,
        sample=smk.params.sample,
        cells_only=smk.params.cells_only,
        productive_only=smk.params.productive_only,
    )
adata.write_h5ad(smk.output.h5ad, compression="gzip")
