# Input checks: the first job of every run. check_inputs opens every sample's input headers
# (format, readability, counts, barcodes shared by GEX and BCR / TCR), adds the design
# warnings and the checks across samples, and reports every problem at once, in seconds.
# The per-sample jobs wait for it (so a new input file reruns every sample's jobs: ancient()
# would keep the others, but then Snakemake 9 did not rerun the changed sample's QC either).
# Library: scripts/cartrack/checks.py.


# on the head node under SLURM too: no queue wait before bad input is found
localrules:
    check_inputs,


rule check_inputs:
    """Every sample's gex, bcr and tcr headers and the design: design_checks.tsv."""
    input:
        files=[local(p) for p in SHEET[["gex", "bcr", "tcr"]].to_numpy().ravel() if p],
        gene_sets=signature_gmts(),
    output:
        table=report(
            "results/tables/design_checks.tsv",
            caption="../report/table_design_checks.rst",
            category="1. Quality control",
        ),
    log:
        "logs/check_inputs.log",
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=runtime(10),
    params:
        sheet=SHEET[["patient", "gex", "bcr", "tcr"]],
        design=DESIGN_CHECKS,
        genes={
            f"tracking.{key}": config["tracking"][key]
            for key in ("cd19_gene", "bcma_gene")
        },
        cfg=config["checks"],
    script:
        "../../scripts/check_inputs.py"
