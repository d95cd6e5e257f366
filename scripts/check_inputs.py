"""Rule check_inputs: every sample's input headers and the design -> design_checks.tsv."""

from cartrack.checks import check_inputs
from cartrack.logs import exit_on_input_error, setup_logging
from cartrack.params import CheckParams
from cartrack.tables import write_tsv

smk = snakemake  # noqa: F821 (set by Snakemake's script directive)
setup_logging(smk.log[0])
checks = CheckParams.from_config(smk.params.cfg)
with exit_on_input_error(smk.log[0]):
    table = check_inputs(
        smk.params.sheet,
        design=smk.params.design.astype(str),
        genes=smk.params.genes,
        gene_sets=smk.input.gene_sets,
        min_barcode_overlap=checks.min_barcode_overlap,
        warn_barcode_overlap=checks.warn_barcode_overlap,
    )
write_tsv(table, smk.output.table)
