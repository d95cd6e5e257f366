# B-cell V(D)J: ingest, clones per patient, tracking tables.
# Library: scripts/cartrack/bcr.py (ingest) and scripts/cartrack/clones.py (clones, tables).


rule bcr_read:
    """Read every sample's B-cell V(D)J file (10x CSV/JSON or AIRR TSV) into one AnnData.

    One job for the cohort, not one per sample: reading takes well under a second per
    sample, so a job per sample would be mostly Python start-up and scirpy's import."""
    input:
        vdj=[local(SHEET.loc[s, "bcr"]) for s in bcr_samples()],
        checked="results/tables/design_checks.tsv",  # inputs checked first
    output:
        h5ad="results/bcr/read.h5ad",
    log:
        "logs/bcr_read.log",
    conda:
        "../../envs/bcr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 20),
        runtime=runtime(30),
    params:
        samples=bcr_samples(),
        receptor="bcr",
        # only the keys it reads (not bcr.clone): tuning clones must not re-read every file
        cfg=config_for(ReadParams, config["bcr"]),
    script:
        "../../scripts/vdj_read.py"


rule bcr_clones:
    """Merge samples, chain QC, clones within patients, the clone-tracking and B-cell tables."""
    input:
        bcr="results/bcr/read.h5ad",
        gex="results/gex/annotated.h5ad",
    output:
        clones=report(
            "results/tables/clones.tsv",
            caption="../report/table_clones.rst",
            category="4. Clone tracking",
        ),
        timeline=report(
            "results/tables/clone_timeline.tsv",
            caption="../report/table_clone_timeline.rst",
            category="4. Clone tracking",
        ),
        b_cells=report(
            "results/tables/b_cells.tsv",
            caption="../report/table_b_cells.rst",
            category="3. B-cell reconstitution",
        ),
        elimination=report(
            "results/tables/elimination.tsv",
            caption="../report/table_elimination.rst",
            category="4. Clone tracking",
        ),
        diversity=report(
            "results/tables/diversity.tsv",
            caption="../report/table_diversity.rst",
            category="3. B-cell reconstitution",
        ),
        isotypes=report(
            "results/tables/isotypes.tsv",
            caption="../report/table_isotypes.rst",
            category="3. B-cell reconstitution",
        ),
        chain_qc=report(
            "results/tables/chain_qc.tsv",
            caption="../report/table_chain_qc.rst",
            category="1. Quality control",
        ),
        airr="results/bcr/airr.h5ad",
        cell_clones="results/bcr/cell_clones.tsv",
        thresholds=report(
            "results/tables/clone_thresholds.tsv",
            caption="../report/table_clone_thresholds.rst",
            category="4. Clone tracking",
        ),
        dist_nearest="results/bcr/dist_to_nearest.tsv",
    log:
        "logs/bcr_clones.log",
    # on the way to cohort.h5mu: see gex_qc_by_cell_type for the order
    priority: 8
    conda:
        "../../envs/bcr.yaml"
    threads: 1
    resources:
        # the gene-expression matrix is read in chunks: only the BCR data scales memory
        mem_mb=mem_mb(3000, 1),
        runtime=runtime(60),
    params:
        sheet=SHEET,
        bcr=config["bcr"],
        tracking=config["tracking"],
    script:
        "../../scripts/bcr_clones.py"
