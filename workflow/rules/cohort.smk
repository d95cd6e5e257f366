rule cohort_assemble:
    """results/cohort.h5mu: gex with cell types, clones, clonotypes and signature scores; airr (BCR and TCR)."""
    input:
        gex="results/gex/annotated.h5ad",
        scores="results/signatures/scores.tsv",
        clones="results/bcr/cell_clones.tsv",
        airr="results/bcr/airr.h5ad",
        clonotypes="results/tcr/cell_clonotypes.tsv",
        tcr_airr="results/tcr/airr.h5ad",
    output:
        h5mu="results/cohort.h5mu",
    log:
        "logs/cohort_assemble.log",
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000, 4),
        runtime=runtime(20),
    params:
        # chains are indexed again once BCR and TCR are combined: as strict as both ingests
        productive_only=config["bcr"]["productive_only"]
        and config["tcr"]["productive_only"],
    script:
        "../../scripts/cohort_assemble.py"
