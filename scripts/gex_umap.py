"""Rule gex_umap: the UMAP layout of the cohort's kNN graph (results/gex/umap.h5ad), read
from integrated.h5ad so that it runs beside gex_annotate: only the UMAP figure needs it."""

from cartrack.integrate import read_graph, umap_layout
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import UmapParams

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
adata = read_graph(smk.input.h5ad)
umap_layout(adata, UmapParams.from_config(smk.params.umap), seed=smk.params.seed)
# the layout and its parameters only
adata.obsm, adata.obsp = {"X_umap": adata.obsm["X_umap"]}, {}
del adata.uns["neighbors"]
adata.write_h5ad(smk.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
