rule gex_qc:
    """Read one sample's gene expression, flag low-quality cells and doublets, keep the rest."""
    input:
        gex=lambda wc: local(SHEET.loc[wc.sample, "gex"]),
    output:
        h5ad="results/gex/qc/{sample}.h5ad",
        cells="results/gex/qc/{sample}.cells.tsv",
        summary="results/gex/qc/{sample}.summary.tsv",
    params:
        qc=config["qc"],
        seed=config["seed"],
    log:
        "logs/gex_qc/{sample}.log",
    threads: 1
    resources:
        mem_mb=mem_mb(1500, 20),
        runtime=runtime(15),
    conda:
        "../../envs/gex.yaml"
    script:
        "../../scripts/gex_qc.py"


rule gex_qc_table:
    """Collect the per-sample QC summaries into qc.tsv."""
    input:
        summaries=expand("results/gex/qc/{sample}.summary.tsv", sample=SAMPLES),
    output:
        table=report(
            "results/tables/qc.tsv",
            caption="../report/qc_table.rst",
            category="1. Quality control",
        ),
    params:
        sheet=SHEET,
    log:
        "logs/gex_qc_table.log",
    threads: 1
    resources:
        mem_mb=mem_mb(500),
        runtime=runtime(5),
    conda:
        "../../envs/gex.yaml"
    script:
        "../../scripts/gex_qc_table.py"


rule gex_integrate:
    """Merge samples, normalise, HVG, sparse PCA, Harmony, kNN, UMAP and Leiden."""
    input:
        h5ads=expand("results/gex/qc/{sample}.h5ad", sample=SAMPLES),
    output:
        h5ad="results/gex/integrated.h5ad",
    params:
        sheet=SHEET,
        integration=config["integration"],
        seed=config["seed"],
    log:
        "logs/gex_integrate.log",
    threads: 2
    resources:
        mem_mb=mem_mb(2000, 6),
        runtime=runtime(60),
    conda:
        "../../envs/gex.yaml"
    script:
        "../../scripts/gex_integrate.py"


rule gex_annotate:
    """Cell types from the marker table, CAR-T calls, cell-type composition per sample."""
    input:
        h5ad="results/gex/integrated.h5ad",
        markers=resource(config["annotation"]["markers"]),
    output:
        h5ad="results/gex/annotated.h5ad",
        table=report(
            "results/tables/cell_types.tsv",
            caption="../report/cell_types_table.rst",
            category="2. Cell types",
        ),
    params:
        sheet=SHEET,
        annotation=config["annotation"],
    log:
        "logs/gex_annotate.log",
    threads: 1
    resources:
        mem_mb=mem_mb(1500, 3),
        runtime=runtime(30),
    conda:
        "../../envs/gex.yaml"
    script:
        "../../scripts/gex_annotate.py"
