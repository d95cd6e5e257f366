# Gene-signature scores (IFN, BAFF, hallmark interferon sets, user sets), pseudobulk DE and GSEA.
# Library: scripts/cartrack/genesets.py, signatures.py, signature_stats.py, pseudobulk.py,
# gsea.py; gene sets and their sources: resources/genesets/.


rule signatures_control:
    """The random negative-control gene set, drawn once for the scores and the GSEA."""
    input:
        # detection rates only, the same before and after gex_annotate: reading the integrated
        # cells lets it run beside gex_annotate instead of after it
        h5ad="results/gex/integrated.h5ad",
        gmt=signature_gmts(),
    output:
        control_gmt="results/signatures/random_control.gmt",
    log:
        "logs/signatures_control.log",
    # short, and both signature jobs wait for it
    priority: 20
    conda:
        "../../envs/signatures.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input, attempt: int((1000 + 2 * input.size_mb) * attempt),
        runtime=lambda wc, attempt: 10 * attempt,
    params:
        signatures=config_for(ControlSetParams, config["signatures"]),
        seed=config["seed"],
    script:
        "../../scripts/signatures_control.py"


rule signatures_score:
    input:
        h5ad="results/gex/annotated.h5ad",
        gmt=signature_gmts(),
        control_gmt="results/signatures/random_control.gmt",
    output:
        scores="results/signatures/scores.tsv",
        summary=report(
            "results/tables/signatures.tsv",
            caption="../report/table_signatures.rst",
            category="5. Signatures",
        ),
        changes=report(
            "results/tables/signature_changes.tsv",
            caption="../report/table_signature_changes.rst",
            category="5. Signatures",
        ),
    log:
        "logs/signatures_score.log",
    # cohort_assemble waits for it; see gex_qc_by_cell_type for the order of the cohort jobs
    priority: 11
    conda:
        "../../envs/signatures.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input, attempt: int((2000 + 6 * input.size_mb) * attempt),
        runtime=lambda wc, attempt: 20 * attempt,
    params:
        # only the keys it reads: GSEA settings or the elimination test must not rescore
        signatures=config_for(SignatureParams, config["signatures"]),
        phases=config_for(PhaseParams, config["tracking"]),
        seed=config["seed"],
    script:
        "../../scripts/signatures_score.py"


rule signatures_gsea:
    input:
        h5ad="results/gex/annotated.h5ad",
        gmt=signature_gmts(),
        control_gmt="results/signatures/random_control.gmt",
        family_gmt=[resource(p) for p in config["signatures"]["gsea"]["family_gmt"]],
    output:
        gsea=report(
            "results/tables/gsea.tsv",
            caption="../report/table_gsea.rst",
            category="5. Signatures",
        ),
        de=report(
            "results/tables/pseudobulk_de.tsv",
            caption="../report/table_pseudobulk_de.rst",
            category="5. Signatures",
        ),
    log:
        "logs/signatures_gsea.log",
    # see gex_qc_by_cell_type for the order of the cohort jobs
    priority: 12
    conda:
        "../../envs/signatures.yaml"
    threads: 1
    resources:
        # counts summed 10,000 cells at a time: 0.40 / 0.43 / 0.48 GB at 23k / 90k / 225k
        # cells (benchmarks/results_memory.md); more genes make larger pseudobulks
        mem_mb=mem_mb(1500, 0.5),
        # sign-flip permutation refits PyDESeq2 up to max_flips times per test
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        # only the keys it reads: scoring settings must not refit every pseudobulk
        gsea=config_for(GseaParams, config["signatures"]["gsea"]),
        cells=config_for(SignatureCellsParams, config["signatures"]),
        phases=config_for(PhaseParams, config["tracking"]),
        seed=config["seed"],
    script:
        "../../scripts/signatures_gsea.py"
