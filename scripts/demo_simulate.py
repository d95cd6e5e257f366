"""Rule demo_simulate: write the demo cohort's Cell Ranger files and its truth tables."""

from pathlib import Path

from cartrack.logs import setup_logging
from cartrack.signatures import read_gmt
from cartrack.simulate import write_cohort

setup_logging(snakemake.log[0])
sets = read_gmt([snakemake.input.ifn, snakemake.input.ifn_alpha, snakemake.input.baff])
write_cohort(
    snakemake.params.sheet,
    ifn_genes=sets["IFN"] + sets["HALLMARK_INTERFERON_ALPHA_RESPONSE"],
    baff_genes=sets["BAFF"],
    truth_dir=Path(snakemake.output.truth),
    germline=Path(snakemake.input.germline),
    seed=snakemake.params.seed,
    **snakemake.params.demo,
)
