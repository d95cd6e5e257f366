"""Rule gex_annotate: cell types, CAR-T calls and cell_types.tsv."""

import anndata as ad

from cartrack.annotate import annotate_cell_types, call_car_t, cell_type_table, read_markers
from cartrack.logs import setup_logging
from cartrack.tables import write_tsv

setup_logging(snakemake.log[0])
params = snakemake.params.annotation
adata = ad.read_h5ad(snakemake.input.h5ad)
annotate_cell_types(
    adata, read_markers(snakemake.input.markers), cluster_majority=params["cluster_majority"]
)
call_car_t(adata, car_features=params["car_features"], min_umis=params["car_min_umis"])
write_tsv(cell_type_table(adata.obs, snakemake.params.sheet), snakemake.output.table)
adata.write_h5ad(snakemake.output.h5ad, compression="gzip")
