"""Rule airr_combine: BCR and TCR airr AnnData -> results/airr/airr.h5ad (both receptors)."""

import anndata as ad

from cartrack.logs import setup_logging
from cartrack.tcr import combine_receptors

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
airr = combine_receptors(
    ad.read_h5ad(smk.input.bcr),
    ad.read_h5ad(smk.input.tcr),
    productive_only=smk.params.productive_only,
)
airr.write_h5ad(smk.output.airr, compression="gzip")
