rule gex_qc:
    """QC a group of samples (qc.samples_per_job): read each one's gene expression, flag
    low-quality cells and doublets, keep the rest."""
    input:
        gex=lambda wc: [local(SHEET.loc[s, "gex"]) for s in QC_PARTS[wc.part]],
        checked="results/tables/design_checks.tsv",  # inputs checked first
    output:
        h5ad="results/gex/qc/{part}.h5ad",
        removed="results/gex/qc/{part}.removed.h5ad",
        cells="results/gex/qc/{part}.cells.tsv",
        summary="results/gex/qc/{part}.summary.tsv",
    log:
        "logs/gex_qc/{part}.log",
    # before the V(D)J reads, which only gex_annotate needs: those then run beside
    # gex_integrate (one core) instead of delaying it
    priority: 5
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, 20),
        runtime=lambda wc, attempt: 15 * len(QC_PARTS[wc.part]) * attempt,
    params:
        samples=lambda wc: QC_PARTS[wc.part],
        sheet=SHEET,
        cfg=config["qc"],
        seed=config["seed"],
    script:
        "../../scripts/gex_qc.py"


rule gex_qc_by_cell_type:
    """How many cells of each type QC and doublet removal took, per sample: kept cells with
    their cohort annotation, removed ones scored against the cohort."""
    input:
        cells=expand("results/gex/qc/{part}.cells.tsv", part=QC_PARTS),
        removed=expand("results/gex/qc/{part}.removed.h5ad", part=QC_PARTS),
        gex="results/gex/annotated.h5ad",
        markers=resource(config["annotation"]["markers"]),
    output:
        table=report(
            "results/tables/qc_by_cell_type.tsv",
            caption="../report/table_qc_by_cell_type.rst",
            category="1. Quality control",
        ),
        cells="results/gex/qc/cell_types_before_qc.tsv",
    log:
        "logs/gex_qc_by_cell_type.log",
    # Order of the cohort jobs (2 cores, benchmarks/results_scale.md): gex_annotate (15)
    # beside gex_umap (13; then cohort_assemble and the UMAP figure, the longest chain from
    # 100k cells), then signatures_gsea (12), signatures_score (11), this one (10), the rest of the
    # chain to cohort.h5mu (bcr_clones, car_t_clones, airr_combine, cohort_assemble: 8) and
    # the figures (0). This job then runs beside signatures_gsea or gex_umap, the lightest:
    # at 25k cells, beside signatures_score or a job of the chain, it would take the
    # workflow's peak memory above the one-process script's.
    priority: 10
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        # peak 0.6 / 1.6 / 3.4 GB at 23k / 90k / 225k cells (benchmarks/results_memory.md)
        mem_mb=mem_mb(1000, 4.5),
        runtime=runtime(20),
    params:
        sheet=SHEET,
        # only the keys it reads: integration's other keys reach it through annotated.h5ad
        annotation=config_for(AnnotationParams, config["annotation"]),
        integration=config_for(ReferenceParams, config["integration"]),
        seed=config["seed"],
    script:
        "../../scripts/gex_qc_by_cell_type.py"


rule gex_qc_table:
    """Collect the per-sample QC summaries into qc.tsv."""
    input:
        summaries=expand("results/gex/qc/{part}.summary.tsv", part=QC_PARTS),
    output:
        table=report(
            "results/tables/qc.tsv",
            caption="../report/table_qc.rst",
            category="1. Quality control",
        ),
    log:
        "logs/gex_qc_table.log",
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        sheet=SHEET,
    script:
        "../../scripts/gex_qc_table.py"


rule gex_integrate:
    """Merge samples, normalise, HVG, sparse PCA, Harmony, kNN graph and Leiden."""
    input:
        h5ads=expand("results/gex/qc/{part}.h5ad", part=QC_PARTS),
    output:
        h5ad="results/gex/integrated.h5ad",
    log:
        "logs/gex_integrate.log",
    # on the critical path: before the V(D)J reads when both are ready
    priority: 5
    conda:
        "../../envs/gex.yaml"
    # one core: the other runs the V(D)J reads
    threads: 1
    resources:
        # peak 0.7 / 2.0 / 4.5 GB at 23k / 90k / 225k cells (benchmarks/results_memory.md;
        # 8.5 GB at 225k before the PCA by blocks and the late read of the counts)
        mem_mb=mem_mb(1000, 7.5),
        runtime=runtime(60),
    params:
        sheet=SHEET,
        # only the keys it reads: the UMAP's epochs must not rerun the integration
        integration=config_for(IntegrationParams, config["integration"]),
        seed=config["seed"],
    script:
        "../../scripts/gex_integrate.py"


rule gex_umap:
    """UMAP layout of the kNN graph: only the UMAP figure needs it, so it runs beside
    gex_annotate and the cohort jobs instead of inside gex_integrate (34 s of 122 at 90k
    cells), which the annotation and everything after it wait for."""
    input:
        # the graph only (integrate.read_graph), so that it runs beside gex_annotate: 25k
        # cells, 0.46 + 0.63 GB for the two jobs
        h5ad="results/gex/integrated.h5ad",
    output:
        h5ad="results/gex/umap.h5ad",
    log:
        "logs/gex_umap.log",
    # see gex_qc_by_cell_type for the order of the cohort jobs
    priority: 13
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        # the graph and the PCA only: 0.4 / 0.7 / 1.5 GB at 23k / 90k / 225k cells
        mem_mb=mem_mb(1000, 1),
        runtime=runtime(30),
    params:
        umap=config_for(UmapParams, config["integration"]),
        seed=config["seed"],
    script:
        "../../scripts/gex_umap.py"


rule gex_annotate:
    """Hierarchical cell types (BCR-refined B subsets), CAR-T calls, composition per sample."""
    input:
        h5ad="results/gex/integrated.h5ad",
        markers=resource(config["annotation"]["markers"]),
        bcr="results/bcr/read.h5ad",
    output:
        h5ad="results/gex/annotated.h5ad",
        table=report(
            "results/tables/cell_types.tsv",
            caption="../report/table_cell_types.rst",
            category="2. Cell types",
        ),
        car_ambient=report(
            "results/tables/car_t_ambient.tsv",
            caption="../report/table_car_t_ambient.rst",
            category="2. Cell types",
        ),
    log:
        "logs/gex_annotate.log",
    # every cohort job waits for it: first when gex_integrate ends (gex_umap beside it)
    priority: 15
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        # peak 0.6 / 1.6 / 3.5 GB at 23k / 90k / 225k cells (benchmarks/results_memory.md)
        mem_mb=mem_mb(1000, 4),
        runtime=runtime(30),
    params:
        sheet=SHEET,
        # only the keys it reads: tuning CAR-T clonotypes or figures must not re-annotate
        annotation=config_for(AnnotationParams, config["annotation"]),
        car_t=config_for(CarCallParams, config["car_t"]),
        bcr=config_for(ReadParams, config["bcr"]),
        seed=config["seed"],
    script:
        "../../scripts/gex_annotate.py"
