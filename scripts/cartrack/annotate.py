"""Cell types from a marker table, CAR-T calls, and the cell-type composition table."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cartrack.design import CELL_TYPES, T_CELLS

log = logging.getLogger(__name__)


def read_markers(path: str) -> pd.DataFrame:
    """Marker table: columns cell_type, gene, direction (up/down), source."""
    markers = pd.read_csv(path, sep="\t", comment="#")
    unknown = set(markers["cell_type"]) - set(CELL_TYPES)
    if unknown:
        raise ValueError(f"marker table {path}: cell_type values outside the vocabulary: {unknown}")
    bad = set(markers["direction"]) - {"up", "down"}
    if bad:
        raise ValueError(f"marker table {path}: column 'direction' must be up/down, got {bad}")
    return markers


def marker_scores(adata: ad.AnnData, markers: pd.DataFrame) -> pd.DataFrame:
    """Per cell and cell type: mean z-score of its up markers minus that of its down markers.

    Uses the log-normalised X; only the marker columns are densified. Gene symbols are
    matched case-insensitively (mouse data carry `Cd19` where human data carry `CD19`).
    """
    upper = pd.Series(np.arange(adata.n_vars), index=adata.var_names.str.upper())
    upper = upper[~upper.index.duplicated()]
    genes = [g for g in markers["gene"].str.upper().unique() if g in upper.index]
    x = adata.X[:, upper[genes].to_numpy()]
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    sd = x.std(axis=0)
    z = pd.DataFrame((x - x.mean(axis=0)) / np.where(sd > 0, sd, 1), columns=genes)
    z = z.clip(upper=10)
    scores = {}
    for cell_type in CELL_TYPES:
        m = markers[markers["cell_type"] == cell_type]
        up = [g for g in m.loc[m["direction"] == "up", "gene"].str.upper() if g in z]
        down = [g for g in m.loc[m["direction"] == "down", "gene"].str.upper() if g in z]
        if not up:
            scores[cell_type] = np.full(adata.n_obs, -np.inf)
            continue
        s = z[up].mean(axis=1).to_numpy()
        if down:
            s = s - 0.5 * z[down].clip(lower=0).mean(axis=1).to_numpy()
        scores[cell_type] = s
    missing = markers.loc[~markers["gene"].str.upper().isin(upper.index), "gene"].unique()
    if len(missing):
        log.warning("%d marker genes absent from the data: %s", len(missing), ", ".join(missing))
    return pd.DataFrame(scores, index=adata.obs_names)


def annotate_cell_types(
    adata: ad.AnnData,
    markers: pd.DataFrame,
    *,
    cluster_key: str = "leiden",
    cluster_majority: float = 0.8,
) -> None:
    """Set `obs["cell_type"]` (contract vocabulary) from marker scores.

    Each cell takes its best-scoring type; within a cluster where one type already holds at
    least `cluster_majority` of the cells, every cell takes that type (smooths noise in
    sparse per-cell calls without merging real minorities into big clusters).
    """
    scores = marker_scores(adata, markers)
    label = scores.idxmax(axis=1)
    if cluster_key in adata.obs:
        for _, idx in label.groupby(adata.obs[cluster_key].to_numpy()).groups.items():
            share = label[idx].value_counts(normalize=True)
            if share.iloc[0] >= cluster_majority:
                label[idx] = share.index[0]
    adata.obs["cell_type"] = pd.Categorical(label.to_numpy(), categories=CELL_TYPES)
    adata.obsm["marker_scores"] = scores.to_numpy()
    adata.uns["marker_score_types"] = list(scores.columns)


def call_car_t(adata: ad.AnnData, *, car_features: list[str], min_umis: int = 1) -> None:
    """Set `obs["car_t"]`: T cells with at least `min_umis` UMIs of the CAR transgenes.

    CAR transcripts in a non-T cell are ambient RNA or doublets, so only T cells count.
    Without any CAR feature in the data, car_t is false everywhere and a warning is logged.
    """
    present = [f for f in car_features if f in adata.var_names]
    if not present:
        log.warning("no CAR features %s in the data: car_t is false for every cell", car_features)
        adata.obs["car_t"] = False
        return
    counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
    umis = np.asarray(counts[:, adata.var_names.get_indexer(present)].sum(axis=1)).ravel()
    adata.obs["car_t"] = (umis >= min_umis) & adata.obs["cell_type"].isin(T_CELLS).to_numpy()


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
