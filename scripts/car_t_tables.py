"""Rule car_t_clones: TCR clonotypes, CAR-T calls (by UMIs or clonotype), car_t.tsv,
car_t_clones.tsv and the TCR airr AnnData."""

import anndata as ad

from cartrack.car_t import ClonotypeCall, track_car_t
from cartrack.double_positive import read_gex_cells
from cartrack.io import INTERMEDIATE_COMPRESSION
from cartrack.logs import setup_logging
from cartrack.params import CarTParams, TcrParams
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params
tcr, car_t = TcrParams.from_config(par.tcr), CarTParams.from_config(par.car_t)

res = track_car_t(
    [ad.read_h5ad(inp.tcr)],  # merged by tcr_read
    read_gex_cells(inp.gex, genes=[]),
    par.sheet,
    post_min_day=par.post_min_day,
    visit_window_days=par.visit_window_days,
    alpha=car_t.clonotype_alpha,
    tissues=car_t.tissues,
    clonotype_call=ClonotypeCall(**car_t.clonotype_call),
    productive_only=tcr.productive_only,
    receptor_arms=tcr.receptor_arms,
    dual_ir=tcr.dual_ir,
    include_multichain=tcr.include_multichain,
    n_jobs=smk.threads,
)
write_tsv(res.car_t, out.car_t)
write_tsv(res.clones, out.clones)
write_tsv(res.timeline, out.timeline)
write_tsv(res.chain_qc, out.chain_qc)
write_tsv(res.cell_clonotypes, out.cell_clonotypes)
write_tsv(res.cell_car_t, out.cell_car_t)
res.airr.write_h5ad(out.airr, compression=INTERMEDIATE_COMPRESSION)
