"""Snakemake adapter of rule signatures_gsea: pseudobulk DE (PyDESeq2) and GSEA, baseline vs
post (pseudobulk_de.tsv, gsea.tsv)."""

from cartrack import gsea
from cartrack.genesets import read_gmt
from cartrack.io import backed_counts
from cartrack.logs import setup_logging
from cartrack.params import GseaParams, PhaseParams, SignatureCellsParams
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out, par = smk.input, smk.output, smk.params

gene_sets = gsea.merge_gene_sets(read_gmt(inp.family_gmt), read_gmt([*inp.gmt, inp.control_gmt]))
# the raw counts stay on disk: the pseudobulks sum them 10,000 cells at a time
with backed_counts(inp.h5ad, x="counts") as adata:
    table, de = gsea.run_gsea(
        adata,
        gene_sets,
        GseaParams.from_config(par.gsea),
        SignatureCellsParams.from_config(par.cells),
        PhaseParams.from_config(par.phases),
        seed=par.seed,
        layer=None,
    )
write_tsv(table, out.gsea)
write_tsv(de, out.de)
