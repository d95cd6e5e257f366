"""Rule demo_simulate: write the demo cohort's Cell Ranger files and its truth tables."""

from pathlib import Path

from cartrack.logs import setup_logging
from cartrack.signatures import read_gmt
from cartrack.simulate import simulate_cohort

setup_logging(snakemake.log[0])
sets = read_gmt(list(snakemake.input))
simulate_cohort(
    snakemake.params.sheet,
    ifn_genes=sets["IFN"] + sets["HALLMARK_INTERFERON_ALPHA_RESPONSE"],
    # the simulator's BAFF programme: the broad set (the shipped BAFF set was narrowed, issue 14)
    baff_genes=sets["NFKB2_NONCANONICAL"],
    truth_dir=Path(snakemake.output.truth),
    seed=snakemake.params.seed,
    **snakemake.params.demo,
)
