# Input checks: the first jobs of every run. check_sample opens one sample's input headers
# (format, readability, counts, barcodes shared by GEX and BCR / TCR), so bad files fail in
# seconds; the sample's QC and V(D)J jobs wait for it. check_inputs adds the design warnings
# and the checks across samples. Library: scripts/cartrack/checks.py, cartrack/sheet.py.


# on the head node under SLURM too: no queue wait before bad input is found
localrules:
    check_sample,
    check_inputs,


rule check_sample:
    """Open one sample's gex, bcr and tcr headers; its warnings (results/checks/{sample}.tsv)."""
    input:
        gex=lambda wc: local(SHEET.loc[wc.sample, "gex"]),
        bcr=lambda wc: [local(p) for p in [SHEET.loc[wc.sample, "bcr"]] if p],
        tcr=lambda wc: [local(p) for p in [SHEET.loc[wc.sample, "tcr"]] if p],
        gene_sets=signature_gmts(),
    output:
        table="results/checks/{sample}.tsv",
    log:
        "logs/check_sample/{sample}.log",
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=runtime(10),
    params:
        row=lambda wc: SHEET.loc[wc.sample, ["patient", "gex", "bcr", "tcr"]].to_dict(),
        genes={
            f"tracking.{key}": config["tracking"][key]
            for key in ("cd19_gene", "bcma_gene")
        },
        cfg=config["checks"],
    script:
        "../../scripts/check_sample.py"


rule check_inputs:
    """Design warnings and every sample's, checked across samples: design_checks.tsv."""
    input:
        tables=expand("results/checks/{sample}.tsv", sample=SAMPLES),
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
        runtime=runtime(5),
    params:
        design=DESIGN_CHECKS,
    script:
        "../../scripts/check_inputs.py"
