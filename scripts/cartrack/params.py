"""Typed parameters of the workflow's steps, one frozen dataclass per config section.

A rule passes its config section (``params: cfg=config["tracking"]``); its adapter turns it
into one of these objects (``TrackingParams.from_config(smk.params.cfg)``) and hands that to
the library. Defaults live in the config schema only (``workflow/schemas/config.schema.yaml``,
applied by Snakemake's ``validate``): none is written here. A section given in part (a test,
a notebook) is completed from the schema's ``default:`` values, so the library never holds a
second copy of them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict:
    import yaml  # only when a section lacks keys: the workflow's sections are complete

    return yaml.safe_load(SCHEMA.read_text())


def schema_defaults(section: str) -> dict[str, Any]:
    """The schema's ``default:`` values of a config section (``"tracking"``, ``"bcr.clone"``)."""
    node = _schema()
    for key in section.split("."):
        node = node["properties"][key]
    return {k: v["default"] for k, v in node.get("properties", {}).items() if "default" in v}


def _frozen(value: Any) -> Any:
    """Lists as tuples (nested), so that a parameters object cannot be changed in place."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _frozen(v) for k, v in value.items()}
    return value


class ConfigParams:
    """Base of the parameter classes: :meth:`from_config` for the config section ``SECTION``."""

    SECTION: ClassVar[str]

    @classmethod
    def from_config(cls, section: Mapping | None = None, *, name: str | None = None, **overrides):
        """The parameters from a config section (keys as the field names).

        Keys the class has no field for (settings of other rules in the same section) are
        ignored; keys missing from `section` take the schema's default of section `name`
        (default ``SECTION``); `overrides` replace single values.
        """
        names = [f.name for f in fields(cls)]
        values = {**dict(section or {}), **overrides}
        missing = [n for n in names if n not in values]
        if missing:
            defaults = schema_defaults(name or cls.SECTION)
            values = {**{n: defaults[n] for n in missing if n in defaults}, **values}
            absent = [n for n in names if n not in values]
            if absent:
                raise TypeError(f"{cls.__name__}: no value and no schema default for {absent}")
        return cls(**{n: _frozen(values[n]) for n in names})


@dataclass(frozen=True)
class ReadParams(ConfigParams):
    """Reading the V(D)J files (sections ``bcr`` and ``tcr``; rules bcr_read, tcr_read):
    :func:`cartrack.bcr.read_bcr`."""

    SECTION: ClassVar[str] = "bcr"
    cells_only: bool
    productive_only: bool


@dataclass(frozen=True)
class TcrParams(ReadParams):
    """Reading and TCR clonotypes (section ``tcr``; rule car_t_clones):
    :func:`cartrack.tcr.prepare_tcr`."""

    SECTION: ClassVar[str] = "tcr"
    receptor_arms: str
    dual_ir: str
    include_multichain: bool


@dataclass(frozen=True)
class CloneParams(ConfigParams):
    """Clone definition (section ``bcr.clone``; rule bcr_clones):
    :func:`cartrack.clones.define_clones`."""

    SECTION: ClassVar[str] = "bcr.clone"
    sequence: str
    threshold: float | str
    threshold_method: str
    fallback_threshold: float
    min_sequences: int
    valley_ratio: float
    min_mode_fraction: float
    max_threshold: float
    linkage: str
    split_light: bool
    light_threshold: float | None
    light_only: str
    include_multichain: bool
    equivalent_genes: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class PhaseParams(ConfigParams):
    """Which samples are baseline, early or after infusion (two keys of section ``tracking``):
    :func:`cartrack.design.phase`. Rules that compare baseline with after infusion outside
    clone tracking (signatures_score, signatures_gsea) pass only these keys, so that tuning
    the elimination test does not rerun them."""

    SECTION: ClassVar[str] = "tracking"
    post_min_day: int
    visit_window_days: int


@dataclass(frozen=True)
class TrackingParams(PhaseParams):
    """Clone tracking (section ``tracking``; rule bcr_clones):
    :func:`cartrack.tracking.track_clones`. The fields are documented in the schema."""

    alpha: float
    fdr_family: str
    compartments: dict[str, tuple[str, ...]]
    recovery_b_fraction: float
    recovery_min_b_cells: int
    unmutated_max_mu_freq: float
    diversity_min_cells: int
    cd19_gene: str
    bcma_gene: str
    cd19_min_counts: float
    bcma_min_counts: float
    cd19_protein: str | None
    bcma_protein: str | None
    dp_alpha: float
    dp_min_fold: float
    dp_min_protein_dsb: float
    dp_min_baseline_cells: int
    isotype_control_pattern: str | None


@dataclass(frozen=True)
class SignatureCellsParams(ConfigParams):
    """Which cells the signature tables and pseudobulks count (two keys of section
    ``signatures``; rules signatures_score, signatures_gsea)."""

    SECTION: ClassVar[str] = "signatures"
    min_cells: int
    tissue: str | None


@dataclass(frozen=True)
class ControlSetParams(ConfigParams):
    """The random negative-control gene set (one key of section ``signatures``; rule
    signatures_control): :func:`cartrack.genesets.add_random_control`."""

    SECTION: ClassVar[str] = "signatures"
    random_control_size: int


@dataclass(frozen=True)
class SignatureParams(SignatureCellsParams):
    """Gene-signature scores and their changes (section ``signatures``; rule
    signatures_score): :func:`cartrack.signatures.score_and_compare`."""

    min_genes: int
    on_too_few: str
    ctrl_size: int
    n_bins: int
    matched_controls: int
    cell_type_groups: tuple[str, ...]
    min_patients_test: int


@dataclass(frozen=True)
class GseaParams(ConfigParams):
    """Pseudobulk DE and GSEA (section ``signatures.gsea``; rule signatures_gsea):
    :func:`cartrack.gsea.run_gsea`."""

    SECTION: ClassVar[str] = "signatures.gsea"
    cell_types: tuple[str, ...]
    per_timepoint: bool
    min_counts: int
    permutations: int
    sign_flip_min_patients: int
    max_flips: int
    min_size: int
    max_size: int


@dataclass(frozen=True)
class CarTParams(ConfigParams):
    """CAR-T calls and clonotypes (section ``car_t``; rules gex_annotate, car_t_clones,
    figures_car_t)."""

    SECTION: ClassVar[str] = "car_t"
    features: tuple[str, ...]
    call_alpha: float
    min_umis: int
    min_reference_cells: int
    clonotype_alpha: float
    tissues: tuple[str, ...]
    clonotype_call: dict[str, float]
    top_clonotypes: int


@dataclass(frozen=True)
class IntegrationParams(ConfigParams):
    """Cohort integration (section ``integration``; rule gex_integrate):
    :func:`cartrack.integrate.normalise` and :func:`cartrack.integrate.embed`."""

    SECTION: ClassVar[str] = "integration"
    target_sum: float
    n_top_genes: int
    n_pcs: int
    batch_key: str
    n_neighbors: int
    exact_neighbors_max_cells: int
    leiden_resolution: float


@dataclass(frozen=True)
class UmapParams(ConfigParams):
    """The UMAP layout (section ``integration``; rule gex_umap):
    :func:`cartrack.integrate.umap_layout`."""

    SECTION: ClassVar[str] = "integration"
    umap_cell_epochs: int
    umap_min_epochs: int


@dataclass(frozen=True)
class QcParams(ConfigParams):
    """Per-sample QC (section ``qc``; rule gex_qc): :func:`cartrack.qc.run_qc`."""

    SECTION: ClassVar[str] = "qc"
    nmads: float
    nmads_mito: float
    max_pct_mito: float
    exclude_ig_from_top_genes: bool
    min_genes: int
    doublet_rate_per_1000: float
    expected_doublet_rate: float | None
    doublet_threshold: str | float
    max_doublet_rate_factor: float
    doublet_n_pcs: int
    min_cells_for_doublets: int
    doublet_exact_neighbors: bool
    on_empty_sample: str


@dataclass(frozen=True)
class AnnotationParams(ConfigParams):
    """Cell-type calls (section ``annotation`` but the marker table, an input; rules
    gex_annotate, gex_qc_by_cell_type): :func:`cartrack.annotate.annotate_cell_types`,
    :func:`cartrack.annotate.annotate_like_reference`,
    :func:`cartrack.annotate.refine_b_subsets`."""

    SECTION: ClassVar[str] = "annotation"
    batch_key: str | None
    min_lineage_score: float
    min_confidence: float
    min_subset_score: float
    default_subsets: dict[str, str]
    contaminant_lineages: tuple[str, ...]
    neighbor_weight: float
    min_proliferation_score: float
    ctrl_size: int
    n_bins: int
    max_naive_mu_freq: float


@dataclass(frozen=True)
class CarCallParams(ConfigParams):
    """CAR-T calls from CAR UMIs (the keys of section ``car_t`` that rule gex_annotate reads):
    :func:`cartrack.annotate.call_car_t`. :class:`CarTParams` holds them too."""

    SECTION: ClassVar[str] = "car_t"
    features: tuple[str, ...]
    call_alpha: float
    min_umis: int
    min_reference_cells: int


@dataclass(frozen=True)
class ReferenceParams(ConfigParams):
    """The cohort's normalisation and neighbours (the keys of section ``integration`` that
    rule gex_qc_by_cell_type reads): cells QC removed are normalised and scored as the
    cohort's (:func:`cartrack.annotate.annotate_like_reference`)."""

    SECTION: ClassVar[str] = "integration"
    target_sum: float
    n_neighbors: int


@dataclass(frozen=True)
class CheckParams(ConfigParams):
    """Input checks (section ``checks``; rule check_inputs):
    :func:`cartrack.checks.check_sample`."""

    SECTION: ClassVar[str] = "checks"
    min_barcode_overlap: float
    warn_barcode_overlap: float


@dataclass(frozen=True)
class DemoParams(ConfigParams):
    """The simulated demo cohort (section ``demo``; rule demo_simulate):
    :func:`cartrack.simulate.write_cohort`."""

    SECTION: ClassVar[str] = "demo"
    cells_per_sample: int
    low_quality_rate: float
    doublet_rate: float


@dataclass(frozen=True)
class FigureParams(ConfigParams):
    """Figures (section ``figures``; the figure rules): sizes, style and what to draw."""

    SECTION: ClassVar[str] = "figures"
    width_mm: float
    wide_width_mm: float
    font_size: float
    dpi: int
    palette: str
    top_clones: int
    gsea_top_terms: int
    signatures: tuple[str, ...]
    signature_cell_types: dict[str, str]
    tissue: str
