"""Rule gex_annotate: cell types (BCR-refined), CAR-T calls, cell_types.tsv, car_t_ambient.tsv.

The B-subset refinement by isotype and SHM happens here, before clones are defined: the
BCR reads (results/bcr/read.h5ad) are summarised per cell with the
same functions bcr_clones uses, so both rules see the same isotype per cell.
"""

import anndata as ad

from cartrack.annotate import (
    annotate_cell_types,
    call_car_t,
    cell_type_table,
    read_markers,
    refine_b_subsets,
)
from cartrack.bcr import index_chains, merge_bcr
from cartrack.clones import cell_annotations
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import AnnotationParams, CarCallParams, ReadParams
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
par = snakemake.params
params = AnnotationParams.from_config(par.annotation)
adata = ad.read_h5ad(snakemake.input.h5ad)
annotate_cell_types(adata, read_markers(snakemake.input.markers), params, seed=par.seed)
airr = merge_bcr([ad.read_h5ad(snakemake.input.bcr)])  # merged by bcr_read
if airr.n_obs:
    index_chains(airr, productive_only=ReadParams.from_config(par.bcr).productive_only)
    refine_b_subsets(adata, cell_annotations(airr), params)
ambient = call_car_t(adata, CarCallParams.from_config(par.car_t))
write_tsv(cell_type_table(adata.obs, par.sheet), snakemake.output.table)
write_tsv(ambient, snakemake.output.car_ambient)
adata.write_h5ad(snakemake.output.h5ad, compression=INTERMEDIATE_COMPRESSION)
