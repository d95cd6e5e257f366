"""Rule tcr_read: one sample's T-cell V(D)J file -> results/tcr/read/{sample}.h5ad."""

from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import ReadParams
from cartrack.tcr import read_tcr

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
par = ReadParams.from_config(smk.params.cfg, name="tcr")
with exit_on_input_error(smk.log[0]):
    adata = read_tcr(
        smk.input.tcr,
        sample=smk.wildcards.sample,
        cells_only=par.cells_only,
        productive_only=par.productive_only,
    )
adata.write_h5ad(smk.output.h5ad, compression="gzip")
