# T-cell V(D)J: ingest, TCR clonotypes per patient, CAR-T tables.
# Library: scripts/cartrack/tcr.py (ingest, clonotypes) and scripts/cartrack/car_t.py (tables).


rule tcr_read:
    """Read every sample's T-cell V(D)J file into one AnnData (one job: see bcr_read)."""
    input:
        vdj=[local(SHEET.loc[s, "tcr"]) for s in tcr_samples()],
        checked="results/tables/design_checks.tsv",  # inputs checked first
    output:
        h5ad="results/tcr/read.h5ad",
    log:
        "logs/tcr_read.log",
    conda:
        "../../envs/bcr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 20),
        runtime=runtime(30),
    params:
        samples=tcr_samples(),
        receptor="tcr",
        # only the keys it reads: TCR clonotype settings must not re-read every file
        cfg=config_for(ReadParams, config["tcr"]),
    script:
        "../../scripts/vdj_read.py"


rule car_t_clones:
    """Merge samples, TRA/TRB chain QC, TCR clonotypes within patients, CAR-T calls through
    clonotypes, CAR-T tables."""
    input:
        tcr="results/tcr/read.h5ad",
        gex="results/gex/annotated.h5ad",
    output:
        car_t=report(
            "results/tables/car_t.tsv",
            caption="../report/table_car_t.rst",
            category="6. CAR-T kinetics",
        ),
        clones=report(
            "results/tables/car_t_clones.tsv",
            caption="../report/table_car_t_clones.rst",
            category="6. CAR-T kinetics",
        ),
        timeline=report(
            "results/tables/car_t_clone_timeline.tsv",
            caption="../report/table_car_t_clone_timeline.rst",
            category="6. CAR-T kinetics",
        ),
        chain_qc=report(
            "results/tables/tcr_chain_qc.tsv",
            caption="../report/table_tcr_chain_qc.rst",
            category="1. Quality control",
        ),
        airr="results/tcr/airr.h5ad",
        cell_clonotypes="results/tcr/cell_clonotypes.tsv",
        cell_car_t="results/tcr/cell_car_t.tsv",
    log:
        "logs/car_t_clones.log",
    # on the way to cohort.h5mu: see gex_qc_by_cell_type for the order
    priority: 8
    conda:
        "../../envs/bcr.yaml"
    # exact-identity clonotype distances: a second process costs more than it saves, and
    # asking for 2 cores kept this job waiting for a whole free machine
    threads: 1
    resources:
        mem_mb=mem_mb(3000, 1),
        runtime=runtime(60),
    params:
        sheet=SHEET,
        tcr=config["tcr"],
        car_t=config["car_t"],
        post_min_day=config["tracking"]["post_min_day"],
        visit_window_days=config["tracking"]["visit_window_days"],
    script:
        "../../scripts/car_t_tables.py"


rule airr_combine:
    """The cohort's airr modality: BCR and TCR chains of each cell in scirpy's layout."""
    input:
        bcr="results/bcr/airr.h5ad",
        tcr="results/tcr/airr.h5ad",
    output:
        airr="results/airr/airr.h5ad",
    log:
        "logs/airr_combine.log",
    # on the way to cohort.h5mu: see gex_qc_by_cell_type for the order
    priority: 8
    conda:
        "../../envs/bcr.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 10),
        runtime=runtime(10),
    params:
        # chains are indexed again once combined: as strict as both ingests
        bcr=config_for(ReadParams, config["bcr"]),
        tcr=config_for(ReadParams, config["tcr"]),
    script:
        "../../scripts/airr_combine.py"
