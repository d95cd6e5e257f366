rule cohort_assemble:
    """results/cohort.h5mu: gex with cell types, UMAP, clones and signature scores; airr."""
    input:
        gex="results/gex/annotated.h5ad",
        umap="results/gex/umap.h5ad",
        scores="results/signatures/scores.tsv",
        clones="results/bcr/cell_clones.tsv",
        clonotypes="results/tcr/cell_clonotypes.tsv",
        car_t="results/tcr/cell_car_t.tsv",
        airr="results/airr/airr.h5ad",
    output:
        h5mu="results/cohort.h5mu",
    log:
        "logs/cohort_assemble.log",
    # on the way to cohort.h5mu: see gex_qc_by_cell_type for the order
    priority: 8
    conda:
        "../../envs/gex.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000, 4),
        runtime=runtime(20),
    script:
        "../../scripts/cohort_assemble.py"
