# Gene-signature scores (IFN, BAFF, hallmark interferon sets, user sets), pseudobulk DE and GSEA.
# Library: scripts/cartrack/genesets.py, signatures.py, signature_stats.py, pseudobulk.py,
# gsea.py; gene sets and their sources: resources/genesets/.


rule signatures_score:
    input:
        h5ad="results/gex/annotated.h5ad",
        gmt=signature_gmts(),
    output:
        scores="results/signatures/scores.tsv",
        control_gmt="results/signatures/random_control.gmt",
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
    conda:
        "../../envs/signatures.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input, attempt: int((2000 + 6 * input.size_mb) * attempt),
        runtime=lambda wc, attempt: 20 * attempt,
    params:
        min_genes=lookup(dpath="signatures/min_genes", within=config),
        on_too_few=lookup(dpath="signatures/on_too_few", within=config),
        ctrl_size=lookup(dpath="signatures/ctrl_size", within=config),
        n_bins=lookup(dpath="signatures/n_bins", within=config),
        random_control_size=lookup(
            dpath="signatures/random_control_size", within=config
        ),
        matched_controls=lookup(dpath="signatures/matched_controls", within=config),
        min_cells=lookup(dpath="signatures/min_cells", within=config),
        cell_type_groups=lookup(dpath="signatures/cell_type_groups", within=config),
        tissue=lookup(dpath="signatures/tissue", within=config),
        min_patients_test=lookup(dpath="signatures/min_patients_test", within=config),
        post_min_day=lookup(dpath="tracking/post_min_day", within=config),
        visit_window_days=lookup(dpath="tracking/visit_window_days", within=config),
        seed=lookup(dpath="seed", within=config),
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
    conda:
        "../../envs/signatures.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input, attempt: int((2000 + 6 * input.size_mb) * attempt),
        # sign-flip permutation refits PyDESeq2 up to max_flips times per test
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        cell_types=lookup(dpath="signatures/gsea/cell_types", within=config),
        per_timepoint=lookup(dpath="signatures/gsea/per_timepoint", within=config),
        min_counts=lookup(dpath="signatures/gsea/min_counts", within=config),
        permutations=lookup(dpath="signatures/gsea/permutations", within=config),
        sign_flip_min_patients=lookup(
            dpath="signatures/gsea/sign_flip_min_patients", within=config
        ),
        max_flips=lookup(dpath="signatures/gsea/max_flips", within=config),
        min_size=lookup(dpath="signatures/gsea/min_size", within=config),
        max_size=lookup(dpath="signatures/gsea/max_size", within=config),
        min_cells=lookup(dpath="signatures/min_cells", within=config),
        tissue=lookup(dpath="signatures/tissue", within=config),
        post_min_day=lookup(dpath="tracking/post_min_day", within=config),
        visit_window_days=lookup(dpath="tracking/visit_window_days", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../../scripts/signatures_gsea.py"
