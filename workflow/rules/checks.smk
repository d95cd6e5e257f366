# Input checks: the first job of every run. It opens every input file's header (format,
# readability, counts, barcodes shared by GEX and BCR), so bad files fail in seconds.
# Library: scripts/cartrack/checks.py (files) and scripts/cartrack/sheet.py (design).


# on the head node under SLURM too: no queue wait before bad input is found
localrules:
    check_inputs,


rule check_inputs:
    """Open every gex and bcr file's header; write the design warnings table."""
    input:
        gex=[local(p) for p in SHEET["gex"]],
        bcr=[local(p) for p in SHEET["bcr"] if p],
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
        sheet=SHEET,
        design=DESIGN_CHECKS,
        genes={
            f"tracking.{key}": config["tracking"][key]
            for key in ("cd19_gene", "bcma_gene")
        },
        min_barcode_overlap=config["checks"]["min_barcode_overlap"],
        warn_barcode_overlap=config["checks"]["warn_barcode_overlap"],
    script:
        "../../scripts/check_inputs.py"
