# Figures (issue 5): drawn from results/tables/*.tsv (and, for the UMAP, the cells of
# results/cohort.h5mu) alone, so that `snakemake --cores 2 figures` redraws them after a style
# change without recomputing any analysis. Library: scripts/cartrack/plots/ (the style kit,
# shared helpers and one module per report section); captions: workflow/report/fig_*.rst.

# Figure (file stem) -> report category. Every figure is written as .pdf and .png; the PNGs
# go into the report.
FIGURES = {
    "qc_cells": "1. Quality control",
    "qc_thresholds": "1. Quality control",
    "umap": "2. Cell types",
    "composition": "2. Cell types",
    "b_fraction": "3. B-cell reconstitution",
    "reconstitution": "3. B-cell reconstitution",
    "isotypes": "3. B-cell reconstitution",
    "diversity": "3. B-cell reconstitution",
    "clone_tracking": "4. Clone tracking",
    "clone_status": "4. Clone tracking",
    "dist_nearest": "4. Clone tracking",
    "signatures_time": "5. Signatures",
    "signature_changes": "5. Signatures",
    "gsea": "5. Signatures",
    "car_t": "6. CAR-T kinetics",
    "car_t_kinetics": "6. CAR-T kinetics",
}

FIGURE_PATIENTS = sorted(SHEET["patient"].astype(str).unique())
# Every figure file (PDF and PNG): the input of rule figures.
FIGURE_FILES = [
    f"results/figures/{name}.{ext}" for name in FIGURES for ext in ("pdf", "png")
]


localrules:
    figures,


rule figures:
    """Target: every figure, from the tables and cohort.h5mu (`snakemake figures`)."""
    input:
        FIGURE_FILES,


rule figures_qc:
    """Cells per sample before and after QC, and the per-sample QC thresholds."""
    input:
        qc="results/tables/qc.tsv",
        code=plots_code("quality"),
    output:
        cells_pdf="results/figures/qc_cells.pdf",
        cells_png=report(
            "results/figures/qc_cells.png",
            caption="../report/fig_qc_cells.rst",
            category=FIGURES["qc_cells"],
        ),
        thresholds_pdf="results/figures/qc_thresholds.pdf",
        thresholds_png=report(
            "results/figures/qc_thresholds.png",
            caption="../report/fig_qc_thresholds.rst",
            category=FIGURES["qc_thresholds"],
        ),
    log:
        "logs/figures_qc.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_qc.py"


rule figures_umap:
    """UMAP of the cohort by cell type, time point and patient, CAR-T cells highlighted."""
    input:
        h5mu="results/cohort.h5mu",
        code=plots_code("cells"),
    output:
        pdf="results/figures/umap.pdf",
        png=report(
            "results/figures/umap.png",
            caption="../report/fig_umap.rst",
            category=FIGURES["umap"],
        ),
    log:
        "logs/figures_umap.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 0.2),
        runtime=runtime(10),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
        seed=lookup(dpath="seed", within=config),
    script:
        "../../scripts/figures_umap.py"


rule figures_composition:
    """Cell-type composition per sample, and the B-cell fraction through aplasia and recovery."""
    input:
        cell_types="results/tables/cell_types.tsv",
        b_cells="results/tables/b_cells.tsv",
        elimination="results/tables/elimination.tsv",
        code=plots_code("cells", "b_cells"),
    output:
        composition_pdf="results/figures/composition.pdf",
        composition_png=report(
            "results/figures/composition.png",
            caption="../report/fig_composition.rst",
            category=FIGURES["composition"],
        ),
        b_fraction_pdf="results/figures/b_fraction.pdf",
        b_fraction_png=report(
            "results/figures/b_fraction.png",
            caption="../report/fig_b_fraction.rst",
            category=FIGURES["b_fraction"],
        ),
    log:
        "logs/figures_composition.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
        tracking=config["tracking"],
    script:
        "../../scripts/figures_composition.py"


rule figures_clones:
    """The largest clones of each patient across time points, and clone status counts."""
    input:
        clones="results/tables/clones.tsv",
        timeline="results/tables/clone_timeline.tsv",
        b_cells="results/tables/b_cells.tsv",
        elimination="results/tables/elimination.tsv",
        code=plots_code("clones"),
    output:
        tracking_pdf="results/figures/clone_tracking.pdf",
        tracking_png=report(
            "results/figures/clone_tracking.png",
            caption="../report/fig_clone_tracking.rst",
            category=FIGURES["clone_tracking"],
        ),
        status_pdf="results/figures/clone_status.pdf",
        status_png=report(
            "results/figures/clone_status.png",
            caption="../report/fig_clone_status.rst",
            category=FIGURES["clone_status"],
        ),
    log:
        "logs/figures_clones.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_clones.py"


rule figures_dist_nearest:
    """Distance-to-nearest histograms per patient with the clone cut-off used."""
    input:
        distances="results/bcr/dist_to_nearest.tsv",
        thresholds="results/tables/clone_thresholds.tsv",
        code=plots_code("clones"),
    output:
        pdf="results/figures/dist_nearest.pdf",
        png=report(
            "results/figures/dist_nearest.png",
            caption="../report/fig_dist_nearest.rst",
            category=FIGURES["dist_nearest"],
        ),
    log:
        "logs/figures_dist_nearest.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_dist_nearest.py"


rule figures_reconstitution:
    """Naive and IgM/IgD shares and clonal evenness over time; isotype composition."""
    input:
        b_cells="results/tables/b_cells.tsv",
        elimination="results/tables/elimination.tsv",
        isotypes="results/tables/isotypes.tsv",
        code=plots_code("b_cells"),
    output:
        reconstitution_pdf="results/figures/reconstitution.pdf",
        reconstitution_png=report(
            "results/figures/reconstitution.png",
            caption="../report/fig_reconstitution.rst",
            category=FIGURES["reconstitution"],
        ),
        isotypes_pdf="results/figures/isotypes.pdf",
        isotypes_png=report(
            "results/figures/isotypes.png",
            caption="../report/fig_isotypes.rst",
            category=FIGURES["isotypes"],
        ),
    log:
        "logs/figures_reconstitution.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_reconstitution.py"


rule figures_signatures:
    """IFN and BAFF scores over time per patient; heatmap of the changes from baseline."""
    input:
        signatures="results/tables/signatures.tsv",
        changes="results/tables/signature_changes.tsv",
        code=plots_code("signatures"),
    output:
        time_pdf="results/figures/signatures_time.pdf",
        time_png=report(
            "results/figures/signatures_time.png",
            caption="../report/fig_signatures_time.rst",
            category=FIGURES["signatures_time"],
        ),
        changes_pdf="results/figures/signature_changes.pdf",
        changes_png=report(
            "results/figures/signature_changes.png",
            caption="../report/fig_signature_changes.rst",
            category=FIGURES["signature_changes"],
        ),
    log:
        "logs/figures_signatures.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_signatures.py"


rule figures_gsea:
    """Dot plot of the top GSEA terms per cell type and comparison."""
    input:
        gsea="results/tables/gsea.tsv",
        code=plots_code("signatures"),
    output:
        pdf="results/figures/gsea.pdf",
        png=report(
            "results/figures/gsea.png",
            caption="../report/fig_gsea.rst",
            category=FIGURES["gsea"],
        ),
    log:
        "logs/figures_gsea.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
    script:
        "../../scripts/figures_gsea.py"


rule figures_car_t:
    """CAR-T cells as a share of T cells over time per patient; CAR-T clonotype kinetics."""
    input:
        car_t="results/tables/car_t.tsv",
        clones="results/tables/car_t_clones.tsv",
        timeline="results/tables/car_t_clone_timeline.tsv",
        code=plots_code("car_t_cells"),
    output:
        pdf="results/figures/car_t.pdf",
        png=report(
            "results/figures/car_t.png",
            caption="../report/fig_car_t.rst",
            category=FIGURES["car_t"],
        ),
        kinetics_pdf="results/figures/car_t_kinetics.pdf",
        kinetics_png=report(
            "results/figures/car_t_kinetics.png",
            caption="../report/fig_car_t_kinetics.rst",
            category=FIGURES["car_t_kinetics"],
        ),
    log:
        "logs/figures_car_t.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
        car_t=config["car_t"],
    script:
        "../../scripts/figures_car_t.py"


rule figures_diversity:
    """Clonal diversity (Hill numbers) over time, observed and rarefied to a common depth."""
    input:
        diversity="results/tables/diversity.tsv",
        code=plots_code("b_cells"),
    output:
        pdf="results/figures/diversity.pdf",
        png=report(
            "results/figures/diversity.png",
            caption="../report/fig_diversity.rst",
            category=FIGURES["diversity"],
        ),
    log:
        "logs/figures_diversity.log",
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, 2),
        runtime=runtime(5),
    params:
        cfg=config["figures"],
        patients=FIGURE_PATIENTS,
    script:
        "../../scripts/figures_diversity.py"
