"""Rule gex_qc_by_cell_type: qc_by_cell_type.tsv and the cell type of every cell before QC.

Kept cells carry their cohort annotation (so the kept counts are cell_types.tsv's); cells QC
removed are scored together with the cohort's cells (control genes matched on the cohort,
as for the annotation; scores mixed with their nearest cohort cells' in the cohort's PCA, as
the cohort's cells are with their kNN neighbours'), never on their own sample alone, whose
composition would decide them.
"""

import anndata as ad
import pandas as pd
import scanpy as sc

from cartrack.annotate import annotate_like_reference, read_markers
from cartrack.io import read_h5ad_parts
from cartrack.logs import setup_logging
from cartrack.params import AnnotationParams, ReferenceParams
from cartrack.qc import qc_by_cell_type
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
inp, par = snakemake.input, snakemake.params
reference = ReferenceParams.from_config(par.integration)
cells = pd.concat([pd.read_csv(p, sep="\t") for p in inp.cells]).set_index("cell")
cohort = read_h5ad_parts(inp.gex, obs=["cell_type"], obsm=["X_pca"], varm=["PCs"])
removed = ad.concat([ad.read_h5ad(p) for p in inp.removed], join="outer", fill_value=0)
if removed.n_obs:  # QC may remove nothing
    sc.pp.normalize_total(removed, target_sum=reference.target_sum)  # as rule gex_integrate
    sc.pp.log1p(removed)
scored = annotate_like_reference(
    removed,
    cohort,
    read_markers(inp.markers),
    AnnotationParams.from_config(par.annotation),
    n_neighbors=reference.n_neighbors,
    seed=par.seed,
)
labels = pd.concat([cohort.obs["cell_type"].astype(str), scored])
cells["qc_cell_type"] = labels.loc[cells.index]
write_tsv(qc_by_cell_type(cells.reset_index(), par.sheet), snakemake.output.table)
write_tsv(cells[["sample", "qc_cell_type"]].reset_index(), snakemake.output.cells)
