"""Snakemake adapter of rule signatures_score: per-cell scores, signatures.tsv, changes."""

from cartrack import genesets, signatures
from cartrack.io import read_h5ad_parts
from cartrack.logs import setup_logging
from cartrack.params import PhaseParams, SignatureParams
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
inp, out = smk.input, smk.output
par = SignatureParams.from_config(smk.params.signatures)
phases = PhaseParams.from_config(smk.params.phases)
seed = smk.params.seed

adata = read_h5ad_parts(inp.h5ad)  # log-normalised X and obs: no counts, graphs, embeddings
gene_sets = genesets.read_gmt([*inp.gmt, inp.control_gmt])
scores, summary, changes = signatures.score_and_compare(adata, gene_sets, par, phases, seed=seed)
write_tsv(signatures.scores_table(scores), out.scores)
write_tsv(summary, out.summary)
write_tsv(changes, out.changes)
