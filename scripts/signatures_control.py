"""Snakemake adapter of rule signatures_control: the random negative-control gene set
(random_control.gmt), read by the scoring and the GSEA."""

from cartrack import genesets
from cartrack.io import read_h5ad_parts
from cartrack.logs import setup_logging
from cartrack.params import ControlSetParams

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
adata = read_h5ad_parts(smk.input.h5ad, obs=[])  # the draw reads detection rates only
size = ControlSetParams.from_config(smk.params.signatures).random_control_size
gene_sets = genesets.add_random_control(
    genesets.read_gmt(smk.input.gmt), adata, size=size, seed=smk.params.seed
)
control = {k: v for k, v in gene_sets.items() if k == genesets.RANDOM_CONTROL}
genesets.write_gmt(control, smk.output.control_gmt, description="random negative control")
