"""Rule demo_simulate: write the demo cohort's Cell Ranger files and its truth tables."""

from pathlib import Path

import pandas as pd

from cartrack.genesets import read_gmt
from cartrack.logs import setup_logging
from cartrack.params import DemoParams
from cartrack.simulate import write_cohort
from cartrack.simulate_tcr import simulate_tcr_files

setup_logging(snakemake.log[0])
sets = read_gmt([snakemake.input.ifn, snakemake.input.ifn_alpha, snakemake.input.nfkb2])
truth_dir = Path(snakemake.output.truth)
write_cohort(
    snakemake.params.sheet,
    ifn_genes=sets["IFN"] + sets["HALLMARK_INTERFERON_ALPHA_RESPONSE"],
    # the simulator's BAFF programme: the broad set (the shipped BAFF set was narrowed, issue 14)
    baff_genes=sets["NFKB2_NONCANONICAL"],
    truth_dir=truth_dir,
    germline=Path(snakemake.input.germline),
    demo=DemoParams.from_config(snakemake.params.demo),
    seed=snakemake.params.seed,
)
simulate_tcr_files(
    snakemake.params.sheet,
    pd.read_csv(truth_dir / "truth_cells.tsv", sep="\t", dtype={"sample": str, "barcode": str}),
    truth_dir=truth_dir,
    seed=snakemake.params.seed,
    post_min_day=snakemake.params.post_min_day,
)
