"""Rule bcr_read: one sample's V(D)J file -> results/bcr/read/{sample}.h5ad."""

from cartrack.bcr import read_bcr
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import ReadParams

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
par = ReadParams.from_config(smk.params.cfg, name="bcr")
with exit_on_input_error(smk.log[0]):
    adata = read_bcr(
        smk.input.bcr,
        sample=smk.wildcards.sample,
        cells_only=par.cells_only,
        productive_only=par.productive_only,
    )
adata.write_h5ad(smk.output.h5ad, compression="gzip")
