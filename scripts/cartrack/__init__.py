"""cartrack: B-cell clones and immune signatures through CAR-T therapy.

The library behind the workflow.

Modules: `sheet` (sample sheet), `simulate` (demo cohort), `io` (gene-expression readers),
`qc`, `integrate`, `annotate`, `bcr` (V(D)J ingest), `clones`, `signatures`, `plots`.
Nothing here imports snakemake: every function is testable on its own.
"""
