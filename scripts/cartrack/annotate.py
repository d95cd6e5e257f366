"""Cell types from a hierarchical marker table, BCR refinement, CAR-T calls, composition table.

Method (issue 13): scanpy's ``score_genes`` (Seurat's AddModuleScore: mean log expression
of a gene set minus that of expression-matched control genes) scores every marker set.
A cell's score is a difference within its own log-normalised profile (nothing is z-scored
across cells); only the choice of control genes depends on the other cells. By default the
controls are matched on the whole cohort's mean expression: within a sample of nearly one
lineage (an infusion product is almost all T cells) every marker of that lineage falls
into the sample's top expression bin next to housekeeping genes, and its score collapses
(demo products: T score 0.37 against 0.87 in blood; half their T cells were called
erythroid, DC or NK). ``batch_key`` matches them within each sample instead.

Lineages are called first
(the best lineage score, with a confidence = its margin over the runner-up relative to
its value); subsets are then compared only within the lineage's cells; proliferation is a
separate axis (``obs["proliferating"]``) that refines plasma-lineage cells only.
"""

import dataclasses
import logging

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from scipy.stats import poisson

from cartrack.design import B_CELLS, CELL_TYPES, NAIVE_B, T_CELLS, InputError
from cartrack.params import AnnotationParams, CarCallParams
from cartrack.workarounds import lean_score_genes_mean

log = logging.getLogger(__name__)

# Lineage groups of the marker table and the cell types each can become; any other
# lineage group (platelet, erythroid, progenitor, ...) is a confident `other`.
LINEAGE_TYPES = {
    "B": B_CELLS,
    "plasma": ("plasmablast", "plasma_cell"),
    "T": T_CELLS,
    "NK": ("NK",),
    "monocyte": ("monocyte",),
    "cDC": ("DC",),
    "pDC": ("DC",),
}
UNASSIGNED = "unassigned"
T_NK_LINEAGES = ("T", "NK")
LEVELS = ("lineage", "subset", "state")


def read_markers(path: str) -> pd.DataFrame:
    """Marker table: columns level (lineage/subset/state), group, gene, direction, source."""
    markers = pd.read_csv(path, sep="\t", comment="#")
    need = {"level", "group", "gene", "direction", "source"}
    if not need <= set(markers.columns):
        raise InputError(
            f"marker table {path}: columns {sorted(need - set(markers.columns))} missing"
        )
    bad_level = set(markers["level"]) - set(LEVELS)
    if bad_level:
        raise InputError(
            f"marker table {path}: column 'level' must be one of {LEVELS}, got {bad_level}"
        )
    subsets = set(markers.loc[markers["level"] == "subset", "group"])
    unknown = subsets - set(CELL_TYPES)
    if unknown:
        raise InputError(
            f"marker table {path}: column 'group' of subset rows outside the vocabulary: {unknown}"
        )
    bad = set(markers["direction"]) - {"up", "down"}
    if bad:
        raise InputError(f"marker table {path}: column 'direction' must be up/down, got {bad}")
    if markers["source"].isna().any():
        genes = markers.loc[markers["source"].isna(), "gene"].tolist()
        raise InputError(f"marker table {path}: column 'source' empty for {genes}")
    return markers


def _lookup(var_names: pd.Index) -> dict[str, str]:
    """Upper-case symbol -> var name (first occurrence), for case-insensitive matching."""
    out: dict[str, str] = {}
    for name in var_names:
        out.setdefault(name.upper(), name)
    return out


def score_marker_sets(
    adata: ad.AnnData,
    markers: pd.DataFrame,
    *,
    batch_key: str | None,
    ctrl_size: int,
    n_bins: int,
    seed: int,
) -> pd.DataFrame:
    """Score of every (level, group) marker set per cell; control genes matched on the whole
    data, or within each value of obs `batch_key` when given.

    Columns ``<level>:<group>``: ``score_genes`` of the up genes minus the positive part of
    ``score_genes`` of the down genes (log-normalised X). A set with no gene in the data
    scores NaN (logged).
    """
    lean_score_genes_mean()
    names = _lookup(adata.var_names)
    sets: dict[str, tuple[list[str], list[str]]] = {}
    for (level, group), rows in markers.groupby(["level", "group"], sort=False):
        genes = {
            d: [
                names[g] for g in rows.loc[rows["direction"] == d, "gene"].str.upper() if g in names
            ]
            for d in ("up", "down")
        }
        sets[f"{level}:{group}"] = (
            list(dict.fromkeys(genes["up"])),
            list(dict.fromkeys(genes["down"])),
        )
    missing = sorted(set(markers["gene"].str.upper()) - set(names))
    if missing:
        log.warning("%d marker genes absent from the data: %s", len(missing), ", ".join(missing))
    batches = (
        adata.obs[batch_key].astype(str)
        if batch_key is not None and batch_key in adata.obs
        else pd.Series("all", index=adata.obs_names)
    )
    scores = pd.DataFrame(np.nan, index=adata.obs_names, columns=list(sets))
    for _, idx in batches.groupby(batches.to_numpy()).groups.items():
        x = adata.X if len(idx) == adata.n_obs else adata[idx].X  # one batch: no copy
        sub = ad.AnnData(x, var=pd.DataFrame(index=adata.var_names))
        for col, (up, down) in sets.items():
            if not up:
                continue
            s = _score(sub, up, ctrl_size=ctrl_size, n_bins=n_bins, seed=seed)
            if down:  # absent down markers are no evidence: only expression above control counts
                s = s - np.maximum(
                    _score(sub, down, ctrl_size=ctrl_size, n_bins=n_bins, seed=seed), 0
                )
            scores.loc[idx, col] = s
    for col, (up, _) in sets.items():
        if not up:
            log.warning("marker set %s has no gene in the data: never called", col)
    return scores


def _score(
    sub: ad.AnnData, genes: list[str], *, ctrl_size: int, n_bins: int, seed: int
) -> np.ndarray:
    # in place (copy=True would copy X for each of the ~30 marker sets)
    sc.tl.score_genes(
        sub,
        genes,
        ctrl_size=min(ctrl_size, max(1, sub.n_vars - len(genes))),
        n_bins=n_bins,
        random_state=seed,
        score_name="_score",
        use_raw=False,
    )
    return sub.obs.pop("_score").to_numpy(dtype=float)


def smooth_over_neighbors(scores: pd.DataFrame, connectivities, weight: float) -> pd.DataFrame:
    """(1 - weight) x own score + weight x the connectivity-weighted mean of the neighbours'.

    Cells without neighbours keep their own score. NaN scores (a set absent from a batch)
    stay NaN.
    """
    w = sp.csr_matrix(connectivities, dtype=float)
    deg = np.asarray(w.sum(axis=1)).ravel()
    values = scores.to_numpy(dtype=float)
    filled = np.nan_to_num(values)
    mean = np.asarray(w @ filled) / np.where(deg > 0, deg, 1)[:, None]
    out = np.where(deg[:, None] > 0, (1 - weight) * filled + weight * mean, filled)
    return pd.DataFrame(
        np.where(np.isnan(values), np.nan, out), index=scores.index, columns=scores.columns
    )


def _best(
    scores: pd.DataFrame, family: dict[str, str] | None = None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Best column per row, its score and its confidence (relative margin over the next).

    The runner-up is the best column of another `family` (columns that lead to the same cell
    type, such as cDC and pDC, do not compete).
    """
    values = scores.to_numpy(dtype=float)
    filled = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-filled, axis=1)
    rows = np.arange(len(values))
    top = filled[rows, order[:, 0]]
    fam = np.array([(family or {}).get(c, c) for c in scores.columns])
    rival = np.where(fam[None, :] == fam[order[:, 0]][:, None], -np.inf, filled)
    second = np.maximum(rival.max(axis=1), 0)  # a negative runner-up is no evidence
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(top > 0, (top - second) / top, 0.0)
    best = pd.Series(np.asarray(scores.columns)[order[:, 0]], index=scores.index)
    return (
        best,
        pd.Series(top, index=scores.index),
        pd.Series(np.clip(confidence, 0, 1), index=scores.index),
    )


def annotate_cell_types(
    adata: ad.AnnData,
    markers: pd.DataFrame,
    params: AnnotationParams,
    *,
    seed: int,
) -> None:
    """Set obs ``lineage``, ``cell_type``, ``cell_type_confidence``, ``subset_confidence``,
    ``proliferation_score`` and ``proliferating``; scores go to ``obsm["marker_scores"]``.

    Control genes are matched on the whole data, or within each value of obs ``batch_key``
    (`params`, config section ``annotation``). A cell whose best lineage scores below
    ``min_lineage_score`` or whose confidence is below ``min_confidence`` is lineage ``unassigned``
    and cell type ``other``. Within a lineage the best subset wins if it scores at least
    ``min_subset_score``; otherwise the lineage's ``default_subsets`` entry (the subset that needs
    no positive evidence: naive B cells lack the memory, transitional and atypical markers).
    Plasma-lineage cells that proliferate are plasmablasts (Ki-67+, Mei et al. 2015); proliferation
    never changes a lineage. ``contaminant_lineages`` (platelet and red-cell RNA: ambient
    haemoglobin, platelets stuck to monocytes and T cells) neither compete with nor lower the
    confidence of the immune lineages; they are called only for cells without any immune lineage
    score. With a kNN graph (``obsp["connectivities"]``) every score is first mixed with its
    neighbours' mean (:func:`smooth_over_neighbors`, ``neighbor_weight``), which denoises dropout.
    """
    p = params
    defaults = dict(p.default_subsets)
    for name, subset in defaults.items():
        if subset not in LINEAGE_TYPES.get(name, ()):
            raise InputError(
                f"config annotation.default_subsets: {name}: {subset!r} is not a subset of "
                f"lineage {name} (one of {LINEAGE_TYPES.get(name, ())})"
            )
    scores = score_marker_sets(
        adata, markers, batch_key=p.batch_key, ctrl_size=p.ctrl_size, n_bins=p.n_bins, seed=seed
    )
    if p.neighbor_weight > 0 and "connectivities" in adata.obsp:
        scores = smooth_over_neighbors(scores, adata.obsp["connectivities"], p.neighbor_weight)
    lineage_cols = [c for c in scores.columns if c.startswith("lineage:")]
    if not lineage_cols:
        raise InputError("marker table has no lineage rows")
    contaminant = [f"lineage:{g}" for g in p.contaminant_lineages]
    cells_cols = [c for c in lineage_cols if c not in contaminant]
    family = {
        c: "/".join(LINEAGE_TYPES.get(c.removeprefix("lineage:"), ("other",))) for c in cells_cols
    }
    best, top, confidence = _best(scores[cells_cols], family)
    lineage = best.str.removeprefix("lineage:")
    low = (top < p.min_lineage_score) | (confidence < p.min_confidence)
    lineage[low] = UNASSIGNED
    extra = [c for c in contaminant if c in scores.columns]
    if extra:  # platelets / red cells: only where no cell lineage is called
        c_best, c_top, c_conf = _best(scores[extra])
        won = low & (c_top >= p.min_lineage_score) & (top < p.min_lineage_score)
        lineage[won] = c_best[won].str.removeprefix("lineage:")
        confidence[won] = c_conf[won]
        low &= ~won
    label = pd.Series("other", index=adata.obs_names, dtype=object)
    subset_conf = pd.Series(np.nan, index=adata.obs_names)
    prolif = scores.get("state:proliferation", pd.Series(np.nan, index=adata.obs_names))
    proliferating = prolif.fillna(-np.inf) >= p.min_proliferation_score
    for name, types in LINEAGE_TYPES.items():
        cells = lineage.index[lineage == name]
        if not len(cells):
            continue
        if len(types) == 1:
            label[cells] = types[0]
            continue
        cols = [f"subset:{t}" for t in types if f"subset:{t}" in scores.columns]
        if name not in defaults:
            raise InputError(f"config annotation.default_subsets: no subset for lineage {name}")
        if not cols:
            label[cells] = defaults[name]
            continue
        sub_best, sub_top, sub_conf = _best(scores.loc[cells, cols])
        chosen = sub_best.str.removeprefix("subset:").where(
            sub_top >= p.min_subset_score, defaults[name]
        )
        if name == "plasma":
            chosen[proliferating[cells].to_numpy()] = "plasmablast"
        label[cells] = chosen
        subset_conf[cells] = sub_conf.where(sub_top >= p.min_subset_score, 0.0)
    obs = adata.obs
    obs["lineage"] = pd.Categorical(lineage.to_numpy())
    obs["cell_type"] = pd.Categorical(label.to_numpy(), categories=CELL_TYPES)
    obs["cell_type_confidence"] = confidence.to_numpy()
    obs["subset_confidence"] = subset_conf.to_numpy()
    obs["proliferation_score"] = prolif.to_numpy()
    obs["proliferating"] = proliferating.to_numpy()
    adata.obsm["marker_scores"] = scores.to_numpy()
    adata.uns["marker_score_sets"] = list(scores.columns)
    counts = obs["cell_type"].value_counts()
    log.info(
        "cell types: %s; %d cells unassigned (low confidence)",
        ", ".join(f"{k} {v}" for k, v in counts.items() if v),
        int(low.sum()),
    )


def annotate_like_reference(
    query: ad.AnnData,
    reference: ad.AnnData,
    markers: pd.DataFrame,
    params: AnnotationParams,
    *,
    n_neighbors: int,
    seed: int,
) -> pd.Series:
    """Cell types of `query` cells scored together with the `reference` cells, so that each
    marker score's control genes are matched on the reference's mean expression (the
    cohort), not on the query's own composition.

    Both hold log-normalised values in X; query features missing from the reference are
    dropped and reference features missing from the query count as zero. When the reference
    has a PCA (``obsm["X_pca"]``, ``varm["PCs"]``), each query cell's scores are mixed with
    those of its `n_neighbors` nearest reference cells there (``neighbor_weight``, as the
    cohort's cells are with theirs; config ``integration.n_neighbors``). `params` go to
    :func:`annotate_cell_types` without ``batch_key`` (one control-gene choice for all).
    Used for the cells QC removed, which the cohort annotation never sees: a sample scored
    alone mislabels a sample of nearly one lineage (module docstring). The reference's X is
    released (set to None) once copied into the matrix scored: the cohort is the job's
    largest item.
    """
    idx = query.var_names.get_indexer(reference.var_names)
    present = sp.diags((idx >= 0).astype(float))
    aligned = (sp.csr_matrix(query.X)[:, np.maximum(idx, 0)] @ present).astype(np.float32)
    graph = None
    if "X_pca" in reference.obsm and "PCs" in reference.varm and query.n_obs:
        graph = _neighbours_in_reference(aligned, reference, n_neighbors)
    both = ad.AnnData(
        sp.vstack([aligned, sp.csr_matrix(reference.X)]).tocsr(),
        obs=pd.DataFrame(index=query.obs_names.append(reference.obs_names)),
        var=pd.DataFrame(index=reference.var_names),
    )
    # the scored matrix holds the reference's rows now: release its own copy (1.4 GB at 225k)
    reference.X = None
    if graph is not None:
        both.obsp["connectivities"] = graph
    annotate_cell_types(both, markers, dataclasses.replace(params, batch_key=None), seed=seed)
    return both.obs["cell_type"].iloc[: query.n_obs].astype(str).set_axis(query.obs_names)


def _neighbours_in_reference(x, reference: ad.AnnData, n_neighbors: int) -> sp.csr_matrix:
    """Connectivities (query + reference cells square) from each query cell, projected on
    the reference's principal axes (centred on its means, as scanpy's PCA), to its nearest
    reference cells; reference cells get none."""
    from sklearn.neighbors import NearestNeighbors

    means = np.asarray(reference.X.mean(axis=0)).ravel()
    pcs = np.asarray(reference.varm["PCs"])
    projected = np.asarray(x @ pcs) - means @ pcs
    k = min(n_neighbors, reference.n_obs)
    index = NearestNeighbors(n_neighbors=k).fit(reference.obsm["X_pca"])
    # sklearn's brute force holds a query x reference distance matrix, two copies (0.9 GB for
    # 2,500 removed cells against 23k): query in batches of about 128 MB
    step = max(1, 8_000_000 // reference.n_obs)
    nearest = np.vstack(
        [
            index.kneighbors(projected[i : i + step], return_distance=False)
            for i in range(0, len(projected), step)
        ]
    )
    n_query, n = x.shape[0], x.shape[0] + reference.n_obs
    rows = np.repeat(np.arange(n_query), k)
    return sp.csr_matrix((np.ones(rows.size), (rows, nearest.ravel() + n_query)), shape=(n, n))


def refine_b_subsets(
    adata: ad.AnnData,
    bcr: pd.DataFrame,
    params: AnnotationParams,
) -> pd.Series:
    """Let a B cell's BCR refine its subset; return the reason per cell (obs ``b_subset_source``).

    `bcr` is indexed by cell name with ``isotype`` (IGHM, IGHG1, ...) and, when available,
    ``mu_freq`` (SHazaM's ``observedMutations`` frequency; else ``shm`` = 1 - v_identity). Switched
    (IgG/IgA/IgE) or mutated (above ``max_naive_mu_freq`` of `params`) naive/transitional calls
    become ``B_memory``; unswitched and unmutated memory/atypical calls become the better scoring of
    naive/transitional. Unswitched cells without a mutation frequency keep the expression call (IgM
    memory cannot be told from naive without SHM).
    """
    cells = adata.obs_names.intersection(bcr.index[bcr["isotype"].notna()])
    obs = adata.obs
    source = pd.Series("expression", index=adata.obs_names, dtype=object)
    label = obs["cell_type"].astype(str).copy()
    in_b = label[cells].isin(B_CELLS)
    cells = cells[in_b.to_numpy()]
    if not len(cells):
        obs["b_subset_source"] = pd.Categorical(source.to_numpy())
        log.info("BCR refinement: no B cell with an isotype")
        return source
    mu_col = "mu_freq" if "mu_freq" in bcr.columns else "shm" if "shm" in bcr.columns else None
    # IgM / IGHM / IgG2b / IGHG2B -> M, M, G2B, G2B
    iso = (
        bcr.loc[cells, "isotype"].astype("string").str.upper().str.replace(r"^IGH?", "", regex=True)
    )
    mu = (
        pd.to_numeric(bcr.loc[cells, mu_col], errors="coerce")
        if mu_col
        else pd.Series(np.nan, index=cells)
    )
    switched = iso.str.startswith(("G", "A", "E")).fillna(False).to_numpy(dtype=bool)
    unswitched = iso.str.startswith(("M", "D")).fillna(False).to_numpy(dtype=bool)
    mutated = (mu > params.max_naive_mu_freq).to_numpy()
    unmutated = (mu <= params.max_naive_mu_freq).to_numpy()
    current = label[cells].to_numpy()
    to_memory = (switched | mutated) & np.isin(current, NAIVE_B)
    to_naive = unswitched & unmutated & ~np.isin(current, NAIVE_B)
    scores = pd.DataFrame(
        adata.obsm["marker_scores"], index=adata.obs_names, columns=adata.uns["marker_score_sets"]
    )
    naive_cols = [f"subset:{t}" for t in NAIVE_B if f"subset:{t}" in scores]
    naive_pick = (
        scores.loc[cells, naive_cols]
        .fillna(-np.inf)
        .idxmax(axis=1)
        .str.removeprefix("subset:")
        .to_numpy()
        if naive_cols
        else np.full(len(cells), NAIVE_B[0])
    )
    new = np.where(to_memory, "B_memory", np.where(to_naive, naive_pick, current))
    label[cells] = new
    source[cells] = np.where(to_memory | to_naive, "bcr", "expression+bcr_agrees")
    obs["cell_type"] = pd.Categorical(label.to_numpy(), categories=CELL_TYPES)
    obs["b_subset_source"] = pd.Categorical(source.to_numpy())
    log.info(
        "BCR refinement (%s): %d B cells with an isotype; %d made memory, %d naive/transitional",
        mu_col or "isotype only",
        len(cells),
        int(to_memory.sum()),
        int(to_naive.sum()),
    )
    return source


def _counts(adata: ad.AnnData):
    return adata.layers["counts"] if "counts" in adata.layers else adata.X


def call_car_t(
    adata: ad.AnnData,
    params: CarCallParams,
    *,
    sample_key: str = "sample",
) -> pd.DataFrame:
    """Set ``obs["car_t"]``: CAR UMIs above the sample's ambient level in a T/NK or unassigned cell.

    Ambient CAR RNA per sample is estimated from the confidently non-T/NK cells (B lineage,
    myeloid, DC, ...): their CAR UMIs per total UMIs (the CAR features: ``features`` of
    `params`, config section ``car_t``). A cell is CAR-positive when its CAR UMIs are at least
    ``min_umis`` and their Poisson upper tail under the ambient expectation (rate x the
    cell's total UMIs) is at most ``call_alpha``. The rate is (CAR UMIs + 0.5) / total
    UMIs of the reference cells (Jeffreys prior): no CAR UMI among a few hundred thousand
    reference UMIs does not show that a sample has no ambient CAR RNA, and a rate of 0 would
    call every T cell with one stray CAR UMI a CAR-T cell. A sample with fewer than
    ``min_reference_cells`` reference cells uses the cohort's pooled rate. The tail
    probability itself goes to ``obs["car_ambient_p"]`` (1 for a cell without CAR UMIs; a
    CAR-T call through the TCR clonotype uses it, :mod:`cartrack.car_t`). Returns the
    per-sample table (ambient estimate and the UMI threshold at the sample's median depth).
    """
    car_features, alpha = params.features, params.call_alpha
    min_umis, min_reference_cells = params.min_umis, params.min_reference_cells
    obs = adata.obs
    present = [f for f in car_features if f in adata.var_names]
    obs["car_t"] = False
    obs["car_ambient_p"] = 1.0
    samples = (
        obs[sample_key].astype(str) if sample_key in obs else pd.Series("all", index=obs.index)
    )
    if not present:
        log.warning("no CAR features %s in the data: car_t is false for every cell", car_features)
        obs["car_umis"] = 0
        return pd.DataFrame(columns=_AMBIENT_COLUMNS)
    counts = _counts(adata)
    car = np.asarray(counts[:, adata.var_names.get_indexer(present)].sum(axis=1)).ravel()
    total = np.asarray(counts.sum(axis=1)).ravel()
    lineage = obs["lineage"].astype(str).to_numpy()
    eligible = np.isin(lineage, (*T_NK_LINEAGES, UNASSIGNED))
    reference = ~eligible
    pooled = (car[reference].sum() + 0.5) / max(total[reference].sum(), 1)
    rows = []
    positive = np.zeros(adata.n_obs, dtype=bool)
    p_ambient = np.ones(adata.n_obs)
    for name, idx in samples.groupby(samples.to_numpy()).indices.items():
        ref = idx[reference[idx]]
        own = len(ref) >= min_reference_cells
        rate = (car[ref].sum() + 0.5) / max(total[ref].sum(), 1) if own else pooled
        if not own:
            log.warning(
                "sample %s: %d reference (non-T/NK) cells < %d: cohort ambient CAR rate used",
                name, len(ref), min_reference_cells,
            )  # fmt: skip
        expected = rate * total[idx]
        p = poisson.sf(car[idx] - 1, expected)
        p_ambient[idx] = p
        positive[idx] = (car[idx] >= min_umis) & (p <= alpha)
        median = float(np.median(total[idx]))
        k = max(min_umis, int(poisson.isf(alpha, rate * median)) + 1) if rate > 0 else min_umis
        rows.append(
            {
                "sample": name,
                "n_cells": len(idx),
                "n_reference_cells": len(ref),
                "ambient_source": "sample" if own else "cohort",
                "ambient_car_umis_per_10k": rate * 1e4,
                "median_total_umis": median,
                "car_umi_threshold": k,
                "n_car_positive": int(positive[idx].sum()),
                "n_car_t": int((positive[idx] & eligible[idx]).sum()),
            }
        )
    obs["car_umis"] = car
    obs["car_ambient_p"] = p_ambient
    obs["car_t"] = positive & eligible
    table = pd.DataFrame(rows, columns=_AMBIENT_COLUMNS)
    log.info("CAR-T: %d cells; %d CAR+ cells outside T/NK (ambient or doublets) not counted",
             int(obs["car_t"].sum()), int((positive & ~eligible).sum()))  # fmt: skip
    return table


_AMBIENT_COLUMNS = [
    "sample", "n_cells", "n_reference_cells", "ambient_source", "ambient_car_umis_per_10k",
    "median_total_umis", "car_umi_threshold", "n_car_positive", "n_car_t",
]  # fmt: skip


def cell_type_table(obs: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """cell_types.tsv: every sample x cell type (zeros included), with the sample's share."""
    counts = (
        obs.groupby(["sample", "cell_type"], observed=False)
        .size()
        .unstack(fill_value=0)
        .reindex(index=sheet.index, columns=CELL_TYPES, fill_value=0)
    )
    long = counts.stack().rename("n_cells").reset_index()
    long.columns = ["sample", "cell_type", "n_cells"]
    total = long.groupby("sample")["n_cells"].transform("sum")
    long["fraction"] = np.where(total > 0, long["n_cells"] / total.where(total > 0, 1), np.nan)
    meta = sheet[["patient", "day", "tissue"]]
    long = long.join(meta, on="sample")
    return long[["sample", "patient", "day", "tissue", "cell_type", "n_cells", "fraction"]]
