"""Rule gex_integrate: merge the QC-passed samples and embed the cohort."""

import gc

import anndata as ad

from cartrack.integrate import embed, merge_samples, merged_counts, normalise
from cartrack.io import INTERMEDIATE_COMPRESSION, read_h5ad_parts, write_layer
from cartrack.logs import setup_logging
from cartrack.params import IntegrationParams

setup_logging(snakemake.log[0])
params = IntegrationParams.from_config(snakemake.params.integration)


def read_samples(read):
    # samples that QC emptied (qc.on_empty_sample: drop) must not narrow the shared genes
    return [a for a in (read(p) for p in snakemake.input.h5ads) if a.n_obs > 0]


adata = merge_samples(read_samples(ad.read_h5ad), snakemake.params.sheet)
normalise(adata, target_sum=params.target_sum)
embed(adata, params, seed=snakemake.params.seed)
adata.write_h5ad(snakemake.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
# the raw counts, read again once the embedding is written: holding them through HVG, PCA,
# kNN and UMAP made them one of the job's largest items (1.4 GB at 225k cells)
var_names = adata.var_names
del adata
gc.collect()
counts = merged_counts(read_samples(lambda p: read_h5ad_parts(p, obs=[])), var_names)
write_layer(snakemake.output.h5ad, "counts", counts)
