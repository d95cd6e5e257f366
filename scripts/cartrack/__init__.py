"""cartrack: B-cell clones and immune signatures through CAR-T therapy.

The library behind the workflow.

Modules: `design` (the study design's vocabulary), `sheet` (sample sheet), `checks` (input
checks), `simulate` with `simulate_scenarios`, `simulate_files`, `simulate_expression`,
`simulate_bcr`, `simulate_tcr` (demo cohort), `io` (gene-expression readers), `qc`,
`integrate`, `annotate`, `airr_fields` (V(D)J field values), `bcr` (V(D)J ingest), `tcr`,
`clones`, `clone_threshold`, `double_positive`, `tracking` (per-clone tables and the whole
step), `tracking_stats` (elimination test, diversity), `b_cell_tables` (per-sample and
per-patient tables), `car_t`, `genesets` (.gmt files, symbol aliases, random control),
`signatures` (scores per cell and sample), `signature_stats` (paired changes, matched
controls), `pseudobulk`, `gsea`, `cohort`, `tables` (TSV in and out), `plots` (figures),
`workarounds` (dependency bugs), `params` (typed config sections), `logs`.
Nothing here imports snakemake: every function is testable on its own.
"""
