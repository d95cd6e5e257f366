"""Rules bcr_read / tcr_read: every sample's V(D)J file -> results/{bcr,tcr}/read.h5ad."""

from cartrack.bcr import merge_bcr, read_bcr
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import ReadParams
from cartrack.tcr import merge_tcr, read_tcr

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
par = ReadParams.from_config(smk.params.cfg, name=smk.params.receptor)
read, merge = (read_bcr, merge_bcr) if smk.params.receptor == "bcr" else (read_tcr, merge_tcr)
with exit_on_input_error(smk.log[0]):
    adata = merge(
        [
            read(
                path,
                sample=sample,
                cells_only=par.cells_only,
                productive_only=par.productive_only,
            )
            for sample, path in zip(smk.params.samples, smk.input.vdj, strict=True)
        ]
    )
adata.write_h5ad(smk.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
