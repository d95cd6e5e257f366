"""Rule airr_combine: BCR and TCR airr AnnData -> results/airr/airr.h5ad (both receptors)."""

import anndata as ad

from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import ReadParams
from cartrack.tcr import combine_receptors

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
bcr = ReadParams.from_config(smk.params.bcr, name="bcr")
tcr = ReadParams.from_config(smk.params.tcr, name="tcr")
airr = combine_receptors(
    ad.read_h5ad(smk.input.bcr),
    ad.read_h5ad(smk.input.tcr),
    # chains are indexed again once combined: as strict as both ingests
    productive_only=bcr.productive_only and tcr.productive_only,
)
airr.write_h5ad(smk.output.airr, compression=INTERMEDIATE_COMPRESSION)
