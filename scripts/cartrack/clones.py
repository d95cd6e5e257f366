"""B-cell clones: definition within each patient and tracking through CAR-T therapy.

Clone definition (:func:`define_clones`), with scirpy, per patient across all its samples:

1. Heavy chain: cells join when their primary heavy chains have the same V gene and the same
   J gene (alleles already stripped at ingest, first of ambiguous calls) and junctions of
   equal length within the configured normalised Hamming distance
   (:func:`scirpy.pp.ir_dist` with ``metric="normalized_hamming"``, then
   :func:`scirpy.tl.define_clonotype_clusters` with ``receptor_arms="VDJ"``,
   ``same_v_gene``, ``same_j_gene`` and ``within_group="patient"``; clusters are connected
   components, i.e. single linkage as in SCOPer's ``hierarchicalClones``). Cells with a
   heavy chain only are assigned like all others.
2. Light chain consistency (``split_light``): inside a heavy cluster, cells whose light
   chains differ (other light V or J gene, or junction beyond the same cutoff; scirpy again,
   ``receptor_arms="VJ"``, ``dual_ir="any"`` so either of two light chains may match) form
   separate clones. Cells of that heavy cluster without a light chain join its largest light
   sub-clone (ties: the one with the alphabetically first cell).
3. Cells without a usable heavy chain (light-only, common in plasma cells): ``exclude``
   leaves them without a clone; ``attach`` puts such a cell into a clone when its light chain
   matches the light chains of exactly one clone of the patient; ``separate`` clusters them
   among themselves by light chain into their own clones (``<patient>_L<n>``).

``clone_id`` is ``<patient>_C<n>``, numbered by decreasing size within the patient, so it is
unique across the cohort.

Tracking uses only *B-lineage BCR+ cells*: cells with a clone that are also gene-expression
cells whose ``cell_type`` is a B-cell or plasmablast/plasma-cell type. V(D)J barcodes without
a gene-expression cell are counted in the chain-QC table and left out of every count here.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from cartrack.annotate import B_CELLS, B_LINEAGE, NAIVE_B
from cartrack.bcr import (
    _clonotype_clusters,
    _exclude_missing_genes,
    gene_name,
    index_chains,
    merge_bcr,
)
from cartrack.io import InputError

log = logging.getLogger(__name__)

B_CELL_TYPES = tuple(B_CELLS)
B_LINEAGE_TYPES = tuple(B_LINEAGE)
NAIVE_TYPES = tuple(NAIVE_B)
BLOOD = "PB"
STATUSES = ("eliminated", "persistent", "emergent", "not_assessable")
LIGHT_ONLY_MODES = ("exclude", "attach", "separate")
_METRIC = "normalized_hamming"
_PAIRINGS = (
    "single pair",
    "orphan VDJ",
    "orphan VJ",
    "extra VJ",
    "extra VDJ",
    "two full chains",
    "ambiguous",
    "multichain",
    "no IR",
)


# --------------------------------------------------------------------------------------
# per-chain / per-cell annotations
# --------------------------------------------------------------------------------------
def isotype(c_call: object) -> str | None:
    """Isotype of a heavy-chain constant gene call.

    Parameters
    ----------
    c_call
        ``IGHM``, ``IGHD``, ``IGHG1``-``IGHG4``, ``IGHA1``/``IGHA2``, ``IGHE`` (alleles and
        ambiguous calls allowed; mouse ``IGHG2B``/``IGHG2C``/``IGHA`` too).

    Returns
    -------
    ``IgM``, ``IgD``, ``IgG1`` ... ``IgG4``, ``IgA1``, ``IgA2``, ``IgE`` (mouse ``IgG2b``,
    ``IgA``), or None for missing, light-chain or unknown constant genes.
    """
    gene = gene_name(c_call)
    if gene is None:
        return None
    gene = gene.upper()
    if not gene.startswith("IGH") or len(gene) < 4 or gene[3] not in "MDGAE":
        return None
    rest = gene[4:]
    if rest and not (
        rest[0].isdigit() and len(rest) <= 2 and (len(rest) == 1 or rest[1].isalpha())
    ):
        return None
    return f"Ig{gene[3]}{rest.lower()}"


def shm_from_identity(v_identity: pd.Series) -> pd.Series:
    """Somatic hypermutation as ``1 - v_identity`` (AIRR: fraction; values > 1 taken as %)."""
    ident = pd.to_numeric(v_identity, errors="coerce").astype(float)
    ident = ident.where(ident <= 1, ident / 100)
    return 1 - ident


def identity_cutoff(identity: float) -> int:
    """scirpy ``normalized_hamming`` cutoff (integer percent) for a minimum identity.

    scirpy rounds each distance to whole percent before comparing, so with the default 0.85
    a pair is joined when at most 15.5% of junction positions differ.
    """
    if not 0 < identity <= 1:
        raise ValueError(f"identity must be in (0, 1], got {identity}")
    return int(round((1 - identity) * 100))


def _chain_fields(airr: ad.AnnData, fields: Sequence[str], chains: Sequence[str]) -> pd.DataFrame:
    """scirpy.get.airr for the fields present; absent fields come back as all-missing."""
    import awkward as ak
    import scirpy as ir

    present = [f for f in fields if f in ak.fields(airr.obsm["airr"])]
    out = (
        ir.get.airr(airr, present, list(chains))
        if present and airr.n_obs
        else pd.DataFrame(index=airr.obs_names)
    )
    for chain in chains:
        for f in fields:
            if f"{chain}_{f}" not in out.columns:
                out[f"{chain}_{f}"] = np.nan
    return out


def cell_annotations(airr: ad.AnnData, *, sequence: str = "aa") -> pd.DataFrame:
    """Per-cell heavy/light chain summary of an indexed BCR AnnData.

    Parameters
    ----------
    airr
        BCR AnnData after :func:`cartrack.bcr.index_chains`.
    sequence
        ``aa`` or ``nt``: which junction must be present for a chain to count as usable.

    Returns
    -------
    Data frame indexed like ``airr.obs`` with ``heavy_v_gene``, ``heavy_j_gene``,
    ``heavy_cdr3_aa`` (AIRR CDR3: the junction without its conserved C and W/F),
    ``heavy_junction_aa`` (with them, Cell Ranger's "cdr3"), ``isotype`` (primary heavy
    chain), ``shm`` (``1 - v_identity`` of the primary heavy chain, missing where the input
    has no ``v_identity``), ``ighv4_34``
    (nullable bool; missing without a heavy chain), ``has_heavy`` and ``has_light``.
    """
    seq = "junction_aa" if sequence == "aa" else "junction"
    fields = ["v_call", "j_call", "c_call", "cdr3_aa", "junction_aa", "v_identity", seq]
    ch = _chain_fields(airr, fields, ["VDJ_1", "VJ_1"])
    out = pd.DataFrame(index=airr.obs_names)
    out["heavy_v_gene"] = ch["VDJ_1_v_call"]
    out["heavy_j_gene"] = ch["VDJ_1_j_call"]
    junction_cdr3 = ch["VDJ_1_junction_aa"].map(
        lambda j: j[1:-1] if isinstance(j, str) and len(j) > 2 else np.nan
    )
    out["heavy_cdr3_aa"] = ch["VDJ_1_cdr3_aa"].fillna(junction_cdr3)
    out["heavy_junction_aa"] = ch["VDJ_1_junction_aa"]
    out["isotype"] = ch["VDJ_1_c_call"].map(isotype)
    out["shm"] = shm_from_identity(ch["VDJ_1_v_identity"])
    has_heavy = ch[f"VDJ_1_{seq}"].notna()
    v4_34 = out["heavy_v_gene"].eq("IGHV4-34")
    out["ighv4_34"] = pd.array(np.where(has_heavy, v4_34, pd.NA), dtype="boolean")
    out["has_heavy"] = has_heavy.to_numpy()
    out["has_light"] = ch[f"VJ_1_{seq}"].notna().to_numpy()
    return out


# --------------------------------------------------------------------------------------
# clone definition
# --------------------------------------------------------------------------------------
def _clusters(
    adata: ad.AnnData, *, arm: str, group: Sequence[str], sequence: str, key: str, n_jobs: int
) -> pd.Series:
    """scirpy clonotype clusters on one receptor arm (`adata`, a copy, is modified)."""
    return _clonotype_clusters(
        adata,
        sequence=sequence,
        metric=_METRIC,
        receptor_arms=arm,
        dual_ir="primary_only" if arm == "VDJ" else "any",
        same_v_gene=True,
        same_j_gene=True,
        within_group=list(group),
        key_added=key,
        n_jobs=n_jobs,
    )


def _light_config(chains: pd.DataFrame, seq: str) -> pd.Series:
    """A string per cell naming its light chains (V, J, junctions)."""
    cols = ["VJ_1_v_call", "VJ_1_j_call", f"VJ_1_{seq}", "VJ_2_v_call", f"VJ_2_{seq}"]
    return chains[cols].astype(str).agg("|".join, axis=1)


def define_clones(
    airr: ad.AnnData,
    *,
    sequence: str = "aa",
    identity: float = 0.85,
    split_light: bool = True,
    light_only: str = "exclude",
    include_multichain: bool = True,
    group_key: str = "patient",
    n_jobs: int = 1,
    key_added: str = "clone_id",
) -> None:
    """Define B-cell clones within each patient (see the module docstring for the rules).

    Parameters
    ----------
    airr
        BCR AnnData after :func:`cartrack.bcr.index_chains`, with ``obs[group_key]``.
    sequence
        Compare junctions as amino acids (``aa``) or nucleotides (``nt``).
    identity
        Minimum junction identity (fraction of equal positions, equal lengths only).
    split_light
        Split heavy-chain clusters whose cells carry different light chains.
    light_only
        Cells without a usable heavy chain: ``exclude``, ``attach`` or ``separate``.
    include_multichain
        Also assign cells with more than two heavy or light chains (scirpy ``multichain``;
        often plasma cells) by their two most abundant chains of each kind.
    group_key
        ``obs`` column that clones must not cross (the patient).
    n_jobs
        Threads for scirpy's distance computation.
    key_added
        ``obs`` column for the clone id; ``obs[f"{key_added}_chain"]`` says whether the clone
        was found by the ``heavy`` or (light-only cells) the ``light`` chain.
    """
    import scirpy as ir

    if light_only not in LIGHT_ONLY_MODES:
        raise ValueError(f"light_only must be one of {LIGHT_ONLY_MODES}, got {light_only!r}")
    if sequence not in ("aa", "nt"):
        raise ValueError(f"sequence must be 'aa' or 'nt', got {sequence!r}")
    seq = "junction_aa" if sequence == "aa" else "junction"
    cutoff = identity_cutoff(identity)
    chains = _chain_fields(airr, ["v_call", "j_call", seq], ["VDJ_1", "VJ_1", "VJ_2"])
    rtype = airr.obs["receptor_type"].astype(str)
    usable = rtype.eq("BCR") | (rtype.eq("multichain") & include_multichain)
    heavy_ok = usable & _exclude_missing_genes(
        chains, [f"VDJ_1_{c}" for c in ("v_call", "j_call", seq)]
    )
    light_ok = usable & _exclude_missing_genes(
        chains, [f"VJ_1_{c}" for c in ("v_call", "j_call", seq)]
    )
    light_only_cells = light_ok & ~heavy_ok
    result = pd.Series(np.nan, index=airr.obs_names, dtype=object)
    basis = pd.Series(np.nan, index=airr.obs_names, dtype=object)
    work_mask = heavy_ok | (light_only_cells if light_only != "exclude" else False)
    group = [group_key]
    if work_mask.any():
        work = airr[work_mask.to_numpy()].copy()
        for key in list(work.uns):
            if key.startswith(("ir_dist", "cc_")):
                del work.uns[key]
        ir.pp.ir_dist(work, metric=_METRIC, cutoff=cutoff, sequence=sequence, n_jobs=n_jobs)
        heavy = work[heavy_ok[work.obs_names].to_numpy()].copy()
        clone = _clusters(
            heavy, arm="VDJ", group=group, sequence=sequence, key="_heavy", n_jobs=n_jobs
        ).map(lambda c: f"H{c}")
        if split_light and len(clone):
            clone = _split_by_light(
                work,
                clone,
                chains,
                light_ok,
                seq=seq,
                sequence=sequence,
                group=group,
                n_jobs=n_jobs,
            )
        result[clone.index] = clone
        basis[clone.index] = "heavy"
        lonly = work.obs_names[light_only_cells[work.obs_names].to_numpy()]
        if light_only == "separate" and len(lonly):
            sub = work[lonly].copy()
            lab = _clusters(
                sub, arm="VJ", group=group, sequence=sequence, key="_lonly", n_jobs=n_jobs
            )
            result[lab.index] = lab.map(lambda c: f"L{c}")
            basis[lab.index] = "light"
        elif light_only == "attach" and len(lonly):
            attached = _attach_light_only(
                work, result, lonly, light_ok, sequence=sequence, group=group, n_jobs=n_jobs
            )
            result[attached.index] = attached
            basis[attached.index] = "light"
    airr.obs[key_added] = _name_clones(result, airr.obs[group_key])
    airr.obs[f"{key_added}_chain"] = basis.where(airr.obs[key_added].notna())
    airr.uns["clone_definition"] = {
        "sequence": sequence,
        "identity": identity,
        "metric": _METRIC,
        "cutoff_percent": cutoff,
        "split_light": split_light,
        "light_only": light_only,
        "include_multichain": include_multichain,
        "group_key": group_key,
    }
    n = airr.obs[key_added].notna().sum()
    log.info("%d of %d BCR cells in %d clones", n, airr.n_obs, airr.obs[key_added].nunique())


def _split_by_light(work, clone, chains, light_ok, *, seq, sequence, group, n_jobs) -> pd.Series:
    """Split heavy clusters into light-chain-consistent clones (module docstring, step 2)."""
    cells = pd.DataFrame({"heavy": clone})
    cells["light"] = light_ok[cells.index].to_numpy()
    cells["config"] = _light_config(chains.loc[cells.index], seq)
    with_light = cells[cells["light"]]
    n_configs = with_light.groupby("heavy")["config"].nunique()
    to_split = n_configs.index[n_configs > 1]
    if len(to_split) == 0:
        return clone
    sub_cells = with_light.index[with_light["heavy"].isin(to_split)]
    sub = work[sub_cells].copy()
    sub.obs["_heavy"] = cells.loc[sub_cells, "heavy"].to_numpy()
    light = _clusters(
        sub, arm="VJ", group=[*group, "_heavy"], sequence=sequence, key="_light", n_jobs=n_jobs
    ).dropna()
    out = clone.copy()
    out[light.index] = clone[light.index] + "." + light.astype(str)
    # heavy-only cells of a split cluster join its largest light sub-clone
    part = pd.DataFrame({"heavy": clone[light.index], "clone": out[light.index]})
    part["cell"] = part.index
    sizes = part.groupby(["heavy", "clone"]).agg(n=("cell", "size"), first=("cell", "min"))
    sizes = sizes.reset_index().sort_values(["heavy", "n", "first"], ascending=[True, False, True])
    largest = sizes.drop_duplicates("heavy").set_index("heavy")["clone"]
    orphans = cells.index[cells["heavy"].isin(to_split) & ~cells.index.isin(light.index)]
    out[orphans] = clone[orphans].map(largest)
    return out


def _attach_light_only(work, result, lonly, light_ok, *, sequence, group, n_jobs) -> pd.Series:
    """Light-only cells whose light chain matches exactly one clone's (module doc, step 3)."""
    assigned = result.index[result.notna() & light_ok[result.index].to_numpy()]
    cells = work.obs_names[work.obs_names.isin(assigned) | work.obs_names.isin(lonly)]
    sub = work[cells].copy()
    lab = _clusters(sub, arm="VJ", group=group, sequence=sequence, key="_lattach", n_jobs=n_jobs)
    frame = pd.DataFrame({"light": lab, "clone": result.reindex(lab.index)})
    known = frame.dropna(subset=["clone"]).groupby("light")["clone"].agg(["nunique", "first"])
    unique = known.loc[known["nunique"] == 1, "first"]
    candidates = frame.loc[frame.index.isin(lonly), "light"]
    return candidates.map(unique).dropna()


def _name_clones(raw: pd.Series, group: pd.Series) -> pd.Series:
    """Cohort-unique clone ids ``<patient>_C<n>`` / ``<patient>_L<n>``, n by decreasing size."""
    frame = pd.DataFrame({"raw": raw, "group": group.astype(str)}).dropna(subset=["raw"])
    if frame.empty:
        return pd.Series(np.nan, index=raw.index, dtype=object)
    frame["cell"] = frame.index
    frame["kind"] = frame["raw"].str[0].map({"H": "C", "L": "L"})
    stats = frame.groupby(["group", "kind", "raw"]).agg(n=("cell", "size"), first=("cell", "min"))
    stats = stats.reset_index().sort_values(
        ["group", "kind", "n", "first"], ascending=[True, True, False, True]
    )
    stats["rank"] = stats.groupby(["group", "kind"]).cumcount() + 1
    stats["clone_id"] = stats["group"] + "_" + stats["kind"] + stats["rank"].astype(str)
    ids = frame.merge(stats[["group", "raw", "clone_id"]], on=["group", "raw"], how="left")
    out = pd.Series(np.nan, index=raw.index, dtype=object)
    out[frame.index] = ids["clone_id"].to_numpy()
    return out


# --------------------------------------------------------------------------------------
# gene expression side
# --------------------------------------------------------------------------------------
def read_gex_cells(
    path: str | Path,
    *,
    genes: Sequence[str] = ("CD19", "TNFRSF17"),
    proteins: Sequence[str] = (),
    layer: str = "counts",
    protein_key: str = "prot_counts",
    chunk: int = 20_000,
) -> pd.DataFrame:
    """Per-cell table of the annotated gene-expression AnnData, without loading its matrix.

    Parameters
    ----------
    path
        ``results/gex/annotated.h5ad`` (obs ``sample`` and ``cell_type``; raw counts in
        ``layers[layer]``; optional ``obsm[protein_key]`` data frame of raw ADT counts).
    genes
        Genes whose raw counts are returned as ``rna_<gene>`` (missing genes: NaN, warned).
    proteins
        Protein columns of ``obsm[protein_key]`` returned as ``prot_<name>`` (NaN if absent).
    layer
        Layer with raw counts.
    protein_key
        ``obsm`` key of the protein counts.
    chunk
        Cells read at a time.

    Returns
    -------
    Data frame indexed by cell name with the ``obs`` columns and the count columns.
    """
    from anndata.io import read_elem, sparse_dataset

    with h5py.File(path, "r") as f:
        obs = read_elem(f["obs"])
        var_names = pd.Index(read_elem(f["var"]).index.astype(str))
        for col in ("sample", "cell_type"):
            if col not in obs.columns:
                raise InputError(f"{path}: gene-expression obs lacks column `{col}`")
        if "layers" not in f or layer not in f["layers"]:
            raise InputError(f"{path}: no raw counts in layers[{layer!r}]")
        store = f["layers"][layer]
        matrix = sparse_dataset(store) if isinstance(store, h5py.Group) else store
        # exact symbol first, else a case-insensitive match (mouse data carry Cd19)
        upper = {name.upper(): name for name in var_names}
        found = {g: g if g in var_names else upper.get(g.upper()) for g in genes}
        present = [g for g in genes if found[g] is not None]
        for g in genes:
            if found[g] is None:
                log.warning(
                    "%s: gene %s not in var_names; its counts are treated as missing", path, g
                )
        cols = var_names.get_indexer([found[g] for g in present])
        values = np.full((len(obs), len(present)), np.nan)
        if present:
            for start in range(0, len(obs), chunk):
                block = matrix[start : start + chunk]
                block = block[:, cols]
                values[start : start + chunk] = np.asarray(
                    block.toarray() if hasattr(block, "toarray") else block, dtype=float
                )
        out = obs.copy()
        for j, g in enumerate(present):
            out[f"rna_{g}"] = values[:, j]
        for g in genes:
            if f"rna_{g}" not in out.columns:
                out[f"rna_{g}"] = np.nan
        prot = None
        if "obsm" in f and protein_key in f["obsm"]:
            prot = read_elem(f["obsm"][protein_key])
            if not isinstance(prot, pd.DataFrame):
                prot = None
                log.warning("%s: obsm[%r] is not a data frame; protein ignored", path, protein_key)
        for p in proteins:
            if prot is not None and p in prot.columns:
                out[f"prot_{p}"] = pd.to_numeric(prot[p], errors="coerce").to_numpy(dtype=float)
            else:
                out[f"prot_{p}"] = np.nan
    out.index = out.index.astype(str)
    return out


def double_positive_cells(
    gex_cells: pd.DataFrame,
    *,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = None,
    bcma_protein: str | None = None,
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
    cd19_min_protein: float = 10,
    bcma_min_protein: float = 10,
) -> pd.Series:
    """Per-cell CD19+BCMA+ call from raw counts.

    For each marker the protein count is used where the cell has one (column
    ``prot_<name>`` not missing), else the RNA count (``rna_<gene>``); a cell is positive
    for the marker when the count is *above* the threshold. Missing counts are negative.

    Returns
    -------
    Boolean series indexed like `gex_cells`.
    """

    def positive(gene, protein, rna_min, prot_min):
        rna = gex_cells.get(f"rna_{gene}", pd.Series(np.nan, index=gex_cells.index))
        pos = rna.astype(float) > rna_min
        if protein:
            prot = gex_cells.get(f"prot_{protein}")
            if prot is not None:
                prot = prot.astype(float)
                pos = pos.where(prot.isna(), prot > prot_min)
        return pos.fillna(False).astype(bool)

    cd19 = positive(cd19_gene, cd19_protein, cd19_min_counts, cd19_min_protein)
    bcma = positive(bcma_gene, bcma_protein, bcma_min_counts, bcma_min_protein)
    return cd19 & bcma


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------
def sheet_table(sheet: pd.DataFrame) -> pd.DataFrame:
    """Sample metadata from the sheet.

    Returns
    -------
    Index sample; ``patient``, ``day`` (int), ``tissue``, ``timepoint`` (default
    ``D<day>``) and ``has_bcr`` (the sheet names a V(D)J file).
    """
    for col in ("sample", "patient", "day", "tissue"):
        if col not in sheet.columns and not (col == "sample" and sheet.index.name == "sample"):
            raise InputError(f"sample sheet lacks column `{col}`")
    s = sheet.copy()
    if "sample" in s.columns:
        s.index = s["sample"].astype(str).to_numpy()
    s.index = s.index.astype(str)
    if not s.index.is_unique:
        raise InputError(
            f"sample sheet: duplicated samples {sorted(s.index[s.index.duplicated()])}"
        )
    out = pd.DataFrame(index=s.index)
    out.index.name = "sample"
    out["patient"] = s["patient"].astype(str)
    out["day"] = pd.to_numeric(s["day"]).astype(int)
    out["tissue"] = s["tissue"].astype(str)
    tp = s["timepoint"] if "timepoint" in s.columns else pd.Series(np.nan, index=s.index)
    out["timepoint"] = tp.where(tp.notna() & tp.astype(str).ne(""), "D" + out["day"].astype(str))
    bcr = s["bcr"] if "bcr" in s.columns else pd.Series(np.nan, index=s.index)
    out["has_bcr"] = bcr.notna() & bcr.astype(str).str.strip().ne("")
    return out


def p_missed(
    baseline_frequency: pd.Series | np.ndarray | float, n_post: pd.Series | np.ndarray | int
) -> np.ndarray:
    """Probability of sampling none of a clone's cells after infusion had it persisted.

    ``(1 - f) ** N`` with ``f`` the clone's baseline frequency among the patient's BCR+
    B-lineage cells and ``N`` the patient's BCR+ B-lineage cells after infusion (each cell an
    independent draw; binomial zero class).
    """
    f = np.clip(np.asarray(baseline_frequency, dtype=float), 0, 1)
    return np.power(1 - f, np.asarray(n_post, dtype=float))


def clone_status(n_baseline, n_post, p_miss, *, alpha: float = 0.05) -> np.ndarray:
    """Contract status per clone.

    ``persistent``: seen at baseline and after infusion; ``eliminated``: seen at baseline,
    not after, ``p_missed < alpha``; ``not_assessable``: seen at baseline, not after,
    ``p_missed >= alpha`` (also clones seen only between infusion and ``post_min_day``);
    ``emergent``: seen after infusion only.
    """
    base = np.asarray(n_baseline) > 0
    post = np.asarray(n_post) > 0
    p = np.asarray(p_miss, dtype=float)
    status = np.full(base.shape, "not_assessable", dtype=object)
    status[base & post] = "persistent"
    status[base & ~post & (p < alpha)] = "eliminated"
    status[~base & post] = "emergent"
    return status


def shannon_evenness(sizes: Sequence[float] | pd.Series) -> float:
    """Shannon entropy of clone sizes divided by log(number of clones); NaN below 2 clones."""
    s = np.asarray(sizes, dtype=float)
    s = s[s > 0]
    if len(s) < 2:
        return np.nan
    p = s / s.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(s)))


def top_clone_fraction(sizes: Sequence[float] | pd.Series) -> float:
    """Share of the largest clone among all cells with a clone; NaN without clones."""
    s = np.asarray(sizes, dtype=float)
    return float(s.max() / s.sum()) if len(s) and s.sum() > 0 else np.nan


def tracked_cells(
    bcr_cells: pd.DataFrame, gex_cells: pd.DataFrame, samples: pd.DataFrame
) -> pd.DataFrame:
    """BCR+ B-lineage cells with a clone: the cells every tracking count is made of.

    Parameters
    ----------
    bcr_cells
        Per BCR cell (index cell name): ``sample``, ``clone_id`` and annotations.
    gex_cells
        Per gene-expression cell: ``cell_type`` and ``double_positive`` (bool).
    samples
        :func:`sheet_table`.
    """
    cells = bcr_cells.loc[bcr_cells["clone_id"].notna()].copy()
    cells = cells.loc[cells.index.isin(gex_cells.index)]
    cells["cell_type"] = gex_cells.loc[cells.index, "cell_type"].astype(str).to_numpy()
    cells = cells.loc[cells["cell_type"].isin(B_LINEAGE_TYPES)]
    cells["double_positive"] = (
        gex_cells.loc[cells.index, "double_positive"].astype(bool).to_numpy()
        if "double_positive" in gex_cells.columns
        else False
    )
    meta = samples.loc[cells["sample"].astype(str), ["patient", "day", "tissue", "timepoint"]]
    for col in meta.columns:
        cells[col] = meta[col].to_numpy()
    return cells


def _mode(values: pd.Series):
    v = values.dropna()
    if v.empty:
        return np.nan
    counts = v.value_counts()
    return sorted(counts.index[counts == counts.max()])[0]


def clone_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    post_min_day: int = 28,
    alpha: float = 0.05,
    dp_min_fraction: float = 0.2,
    dp_min_baseline_cells: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``clones.tsv`` and ``clone_timeline.tsv`` from the tracked cells.

    Parameters
    ----------
    cells
        :func:`tracked_cells`.
    samples
        :func:`sheet_table`.
    post_min_day
        First day that counts as "after infusion".
    alpha
        ``eliminated`` needs ``p_missed < alpha``.
    dp_min_fraction, dp_min_baseline_cells
        ``double_positive`` when ``cd19_bcma_fraction >= dp_min_fraction`` among at least
        ``dp_min_baseline_cells`` baseline cells.

    Returns
    -------
    clones
        Contract columns (``heavy_cdr3_aa``: the most frequent heavy CDR3 in AIRR's sense,
        without the conserved C and W/F; ``isotype``: the most frequent isotype) plus
        ``ighv4_34``, ``isotypes`` (``IgG1:5;IgM:2``), ``mean_shm``, ``baseline_frequency``
        (the f of p_missed), ``n_bcr_baseline`` and ``n_bcr_post`` (the patient's BCR+
        B-lineage cells at baseline / after infusion: N of p_missed) and
        ``heavy_junction_aa`` (the CDR3 with C and W/F, as Cell Ranger's ``cdr3``).
    timeline
        Contract columns plus ``timepoint``.
    """
    cols = [
        "patient",
        "clone_id",
        "n_cells",
        "n_cells_baseline",
        "n_cells_post",
        "first_day",
        "last_day",
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "isotype",
        "cd19_bcma_fraction",
        "double_positive",
        "p_missed",
        "status",
        "ighv4_34",
        "isotypes",
        "mean_shm",
        "baseline_frequency",
        "n_bcr_baseline",
        "n_bcr_post",
        "heavy_junction_aa",
    ]
    tcols = [
        "patient",
        "clone_id",
        "sample",
        "day",
        "tissue",
        "timepoint",
        "n_cells",
        "clone_fraction",
    ]
    if cells.empty:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=tcols)
    c = cells.copy()
    for col in (
        "heavy_v_gene",
        "heavy_j_gene",
        "heavy_cdr3_aa",
        "heavy_junction_aa",
        "isotype",
        "shm",
        "double_positive",
    ):
        if col not in c.columns:
            c[col] = False if col == "double_positive" else np.nan
    c["baseline"] = c["day"] <= 0
    c["post"] = c["day"] >= post_min_day
    g = c.groupby(["patient", "clone_id"], sort=True)
    clones = g.agg(
        n_cells=("sample", "size"),
        n_cells_baseline=("baseline", "sum"),
        n_cells_post=("post", "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        mean_shm=("shm", "mean"),
    )
    clones["heavy_v_gene"] = g["heavy_v_gene"].agg(_mode)
    clones["heavy_j_gene"] = g["heavy_j_gene"].agg(_mode)
    clones["heavy_cdr3_aa"] = g["heavy_cdr3_aa"].agg(_mode)
    clones["heavy_junction_aa"] = g["heavy_junction_aa"].agg(_mode)
    clones["isotype"] = g["isotype"].agg(_mode)
    clones["isotypes"] = g["isotype"].agg(
        lambda v: ";".join(f"{k}:{n}" for k, n in sorted(v.dropna().value_counts().items()))
    )
    clones["ighv4_34"] = clones["heavy_v_gene"].eq("IGHV4-34")
    base = c.loc[c["baseline"]]
    dp = base.groupby(["patient", "clone_id"])["double_positive"].mean()
    clones["cd19_bcma_fraction"] = dp.reindex(clones.index)
    clones["double_positive"] = clones["cd19_bcma_fraction"].ge(dp_min_fraction) & clones[
        "n_cells_baseline"
    ].ge(dp_min_baseline_cells)
    n_base = c.loc[c["baseline"]].groupby("patient").size()
    n_post = c.loc[c["post"]].groupby("patient").size()
    patients = clones.index.get_level_values("patient")
    clones["n_bcr_baseline"] = n_base.reindex(patients, fill_value=0).to_numpy()
    clones["n_bcr_post"] = n_post.reindex(patients, fill_value=0).to_numpy()
    freq = clones["n_cells_baseline"] / clones["n_bcr_baseline"].replace(0, np.nan)
    clones["baseline_frequency"] = freq.fillna(0.0)
    clones["p_missed"] = p_missed(clones["baseline_frequency"], clones["n_bcr_post"])
    clones["status"] = clone_status(
        clones["n_cells_baseline"], clones["n_cells_post"], clones["p_missed"], alpha=alpha
    )
    clones = clones.reset_index()
    clones = clones.sort_values(["patient", "n_cells", "clone_id"], ascending=[True, False, True])
    timeline = c.groupby(["patient", "clone_id", "sample"]).size().rename("n_cells").reset_index()
    per_sample = c.groupby("sample").size()
    timeline["clone_fraction"] = timeline["n_cells"] / timeline["sample"].map(per_sample)
    meta = samples.loc[timeline["sample"], ["day", "tissue", "timepoint"]]
    for col in meta.columns:
        timeline[col] = meta[col].to_numpy()
    timeline = timeline.sort_values(["patient", "clone_id", "day", "sample"])
    return clones[cols].reset_index(drop=True), timeline[tcols].reset_index(drop=True)


def b_cell_table(
    gex_cells: pd.DataFrame,
    bcr_cells: pd.DataFrame,
    tracked: pd.DataFrame,
    samples: pd.DataFrame,
) -> pd.DataFrame:
    """``b_cells.tsv``: one row per sheet sample.

    Parameters
    ----------
    gex_cells
        All gene-expression cells (``sample``, ``cell_type``).
    bcr_cells
        All V(D)J cells (index cell name; ``sample``, ``heavy_v_gene``, ``isotype``, ``shm``).
    tracked
        :func:`tracked_cells` (B-lineage cells with a clone).
    samples
        :func:`sheet_table`.

    Returns
    -------
    Contract columns plus ``timepoint``, ``has_bcr``, ``n_bcr_total`` (all V(D)J cells of
    the sample, with or without a gene-expression cell), ``n_bcr_with_clone``,
    ``switched_fraction`` (IgG/IgA/IgE), ``mean_shm``, ``n_ighv4_34`` and
    ``ighv4_34_fraction``. ``n_bcr_cells`` counts BCR+ B-lineage cells (V(D)J cells whose
    gene-expression cell is B lineage); ``igm_igd_fraction``, ``switched_fraction``,
    ``mean_shm`` and ``ighv4_34_fraction`` are taken among those with a heavy chain (and a
    known isotype for the isotype shares); ``n_clones``, ``shannon_evenness`` and
    ``top_clone_fraction`` among those with a clone. BCR metrics are empty without such
    cells; ``n_clones`` and ``n_ighv4_34`` are empty when the sample has no V(D)J file.
    """
    b_lineage = gex_cells.index[gex_cells["cell_type"].astype(str).isin(B_LINEAGE_TYPES)]
    bcr_b = bcr_cells.loc[bcr_cells.index.isin(b_lineage)]
    for col in ("heavy_v_gene", "isotype", "shm"):
        if col not in bcr_b.columns:
            bcr_b = bcr_b.assign(**{col: np.nan})

    def by_sample(df: pd.DataFrame) -> dict:
        return dict(tuple(df.groupby(df["sample"].astype(str)))) if len(df) else {}

    gex_by, bcr_by, tr_by = by_sample(gex_cells), by_sample(bcr_b), by_sample(tracked)
    bcr_total = bcr_cells.groupby(bcr_cells["sample"].astype(str)).size()
    empty = pd.DataFrame(columns=["cell_type", "heavy_v_gene", "isotype", "shm", "clone_id"])
    rows = []
    for sample, meta in samples.iterrows():
        types = gex_by.get(sample, empty)["cell_type"].astype(str)
        n_cells, n_b = len(types), int(types.isin(B_CELL_TYPES).sum())
        n_naive = int(types.isin(NAIVE_TYPES).sum())
        b = bcr_by.get(sample, empty)
        heavy = b.loc[b["heavy_v_gene"].notna()]
        iso = heavy["isotype"].dropna()
        sizes = tr_by.get(sample, empty).groupby("clone_id").size()
        rows.append(
            {
                "sample": sample,
                "patient": meta["patient"],
                "day": meta["day"],
                "tissue": meta["tissue"],
                "n_cells": n_cells,
                "n_b_cells": n_b,
                "b_fraction": n_b / n_cells if n_cells else np.nan,
                "naive_fraction": n_naive / n_b if n_b else np.nan,
                "n_bcr_cells": len(b),
                "igm_igd_fraction": iso.isin(["IgM", "IgD"]).mean() if len(iso) else np.nan,
                "n_clones": len(sizes) if meta["has_bcr"] else pd.NA,
                "shannon_evenness": shannon_evenness(sizes),
                "top_clone_fraction": top_clone_fraction(sizes),
                "timepoint": meta["timepoint"],
                "has_bcr": bool(meta["has_bcr"]),
                "n_bcr_total": int(bcr_total.get(sample, 0)),
                "n_bcr_with_clone": int(sizes.sum()),
                "switched_fraction": iso.str.match(r"Ig[GAE]").mean() if len(iso) else np.nan,
                "mean_shm": pd.to_numeric(heavy["shm"]).mean() if len(heavy) else np.nan,
                "n_ighv4_34": (
                    int(heavy["heavy_v_gene"].eq("IGHV4-34").sum()) if meta["has_bcr"] else pd.NA
                ),
                "ighv4_34_fraction": (
                    heavy["heavy_v_gene"].eq("IGHV4-34").mean() if len(heavy) else np.nan
                ),
            }
        )
    out = pd.DataFrame(rows)
    for col in ("n_clones", "n_ighv4_34"):
        out[col] = out[col].astype("Int64")
    return out


def b_recovery(b_cells: pd.DataFrame, *, level: float = 0.01) -> pd.DataFrame:
    """B-cell recovery per patient from blood samples.

    The nadir is the post-infusion (day > 0) blood sample with the lowest ``b_fraction``
    (earliest on ties); ``b_recovery_day`` is the first day after the nadir's day whose blood
    ``b_fraction`` reaches `level`, empty if none does.

    Returns
    -------
    Index patient; ``b_recovery_day`` (Int64), ``naive_fraction_at_recovery``,
    ``nadir_day``, ``nadir_b_fraction``.
    """
    out = {}
    for patient, g in b_cells.groupby("patient", sort=True):
        blood = g.loc[(g["tissue"] == BLOOD) & (g["day"] > 0) & g["b_fraction"].notna()]
        blood = blood.sort_values(["day", "sample"])
        rec = {
            "b_recovery_day": pd.NA,
            "naive_fraction_at_recovery": np.nan,
            "nadir_day": pd.NA,
            "nadir_b_fraction": np.nan,
        }
        if len(blood):
            nadir = blood.loc[blood["b_fraction"].idxmin()]
            rec["nadir_day"], rec["nadir_b_fraction"] = nadir["day"], nadir["b_fraction"]
            after = blood.loc[(blood["day"] > nadir["day"]) & (blood["b_fraction"] >= level)]
            if len(after):
                first = after.iloc[0]
                rec["b_recovery_day"] = first["day"]
                rec["naive_fraction_at_recovery"] = first["naive_fraction"]
        out[patient] = rec
    res = pd.DataFrame.from_dict(out, orient="index")
    res.index.name = "patient"
    for col in ("b_recovery_day", "nadir_day"):
        res[col] = res[col].astype("Int64") if len(res) else pd.Series(dtype="Int64")
    return res


def elimination_table(
    clones: pd.DataFrame, b_cells: pd.DataFrame, *, recovery_level: float = 0.01
) -> pd.DataFrame:
    """``elimination.tsv``: one row per patient of the sheet (via `b_cells`).

    Returns
    -------
    Contract columns plus counts of all clones by status (``n_clones``, ``n_eliminated``,
    ``n_persistent``, ``n_emergent``, ``n_not_assessable``), ``n_bcr_baseline``,
    ``n_bcr_post``, ``nadir_day`` and ``nadir_b_fraction``.
    """
    patients = sorted(b_cells["patient"].astype(str).unique())
    rec = b_recovery(b_cells, level=recovery_level).reindex(patients)
    rows = []
    for p in patients:
        cl = clones.loc[clones["patient"] == p]
        dp = cl.loc[cl["double_positive"].astype(bool)]
        row = {
            "patient": p,
            "n_dp_clones": len(dp),
            "n_dp_eliminated": int((dp["status"] == "eliminated").sum()),
            "n_dp_persistent": int((dp["status"] == "persistent").sum()),
            "n_dp_not_assessable": int((dp["status"] == "not_assessable").sum()),
            "b_recovery_day": rec.loc[p, "b_recovery_day"],
            "naive_fraction_at_recovery": rec.loc[p, "naive_fraction_at_recovery"],
            "n_clones": len(cl),
        }
        for s in STATUSES:
            row[f"n_{s}"] = int((cl["status"] == s).sum())
        row["n_bcr_baseline"] = int(cl["n_bcr_baseline"].max()) if len(cl) else 0
        row["n_bcr_post"] = int(cl["n_bcr_post"].max()) if len(cl) else 0
        row["nadir_day"] = rec.loc[p, "nadir_day"]
        row["nadir_b_fraction"] = rec.loc[p, "nadir_b_fraction"]
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("b_recovery_day", "nadir_day"):
        out[col] = out[col].astype("Int64")
    return out


def chain_qc_table(
    airr: ad.AnnData, gex_cells: pd.DataFrame, samples: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``chain_qc.tsv``: per sample with a V(D)J file, what ingest and scirpy's chain QC found.

    Rows: the samples with ``has_bcr`` in `samples` (:func:`sheet_table`) and any other
    sample in `airr`.

    Columns: ``sample``, ``patient``, the ingest counts (``n_contigs``,
    ``n_contigs_not_cell``, ``n_contigs_nonproductive``, ``n_contigs_tcr``,
    ``n_contigs_no_locus``, ``n_contigs_kept``), ``n_bcr_cells``, one column per scirpy
    ``chain_pairing`` category (``n_single_pair``, ``n_orphan_vdj`` = heavy only,
    ``n_orphan_vj`` = light only, ...), ``n_bcr_without_gex`` (V(D)J cells without a
    gene-expression cell: not used for tracking), ``n_bcr_non_b_lineage`` (with a
    gene-expression cell that is not B lineage), ``n_bcr_b_lineage`` and ``n_with_clone``.
    """
    obs = airr.obs
    ingest = airr.uns.get("bcr_ingest")
    if not isinstance(ingest, pd.DataFrame) or "sample" not in ingest.columns:
        ingest = pd.DataFrame(columns=["sample"])
    with_bcr = [] if samples is None else samples.index[samples["has_bcr"]].tolist()
    names = list(
        dict.fromkeys([*with_bcr, *ingest["sample"].astype(str), *obs["sample"].astype(str)])
    )
    in_gex = obs.index.isin(gex_cells.index)
    ctype = gex_cells["cell_type"].reindex(obs.index).astype(object)
    b_lin = ctype.isin(B_LINEAGE_TYPES).to_numpy()
    rows = []
    for s in names:
        m = (obs["sample"].astype(str) == s).to_numpy()
        if samples is not None and s in samples.index:
            patient = samples.loc[s, "patient"]
        else:
            patient = obs.loc[m, "patient"].iloc[0] if m.any() and "patient" in obs else np.nan
        row = {"sample": s, "patient": patient}
        ing = ingest.loc[ingest["sample"].astype(str) == s] if len(ingest) else ingest
        for col in (
            "n_contigs",
            "n_contigs_not_cell",
            "n_contigs_nonproductive",
            "n_contigs_tcr",
            "n_contigs_no_locus",
            "n_contigs_kept",
        ):
            row[col] = int(ing[col].iloc[0]) if len(ing) and col in ing else np.nan
        row["n_bcr_cells"] = int(m.sum())
        pairing = (
            obs.loc[m, "chain_pairing"].astype(str)
            if "chain_pairing" in obs
            else pd.Series(dtype=str)
        )
        for cat in _PAIRINGS:
            row["n_" + cat.lower().replace(" ", "_")] = int((pairing == cat).sum())
        row["n_bcr_without_gex"] = int((m & ~in_gex).sum())
        row["n_bcr_non_b_lineage"] = int((m & in_gex & ~b_lin).sum())
        row["n_bcr_b_lineage"] = int((m & b_lin).sum())
        row["n_with_clone"] = (
            int((m & obs["clone_id"].notna().to_numpy()).sum()) if "clone_id" in obs else 0
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in out.columns:
        if col.startswith("n_contigs"):
            out[col] = out[col].astype("Int64")
    return out


# --------------------------------------------------------------------------------------
# the whole step
# --------------------------------------------------------------------------------------
@dataclass
class CloneResults:
    """Outputs of :func:`track_clones` (tables follow the contract)."""

    airr: ad.AnnData
    cell_clones: pd.DataFrame
    chain_qc: pd.DataFrame
    clones: pd.DataFrame
    clone_timeline: pd.DataFrame
    b_cells: pd.DataFrame
    elimination: pd.DataFrame


def track_clones(
    samples: Sequence[ad.AnnData],
    gex_cells: pd.DataFrame,
    sheet: pd.DataFrame,
    *,
    productive_only: bool = True,
    sequence: str = "aa",
    identity: float = 0.85,
    split_light: bool = True,
    light_only: str = "exclude",
    include_multichain: bool = True,
    post_min_day: int = 28,
    alpha: float = 0.05,
    recovery_b_fraction: float = 0.01,
    cd19_gene: str = "CD19",
    bcma_gene: str = "TNFRSF17",
    cd19_protein: str | None = "CD19",
    bcma_protein: str | None = "CD269",
    cd19_min_counts: float = 0,
    bcma_min_counts: float = 0,
    cd19_min_protein: float = 10,
    bcma_min_protein: float = 10,
    dp_min_fraction: float = 0.2,
    dp_min_baseline_cells: int = 3,
    n_jobs: int = 1,
) -> CloneResults:
    """Merge per-sample BCR data, define clones and build all tracking tables.

    Parameters
    ----------
    samples
        Per-sample outputs of :func:`cartrack.bcr.read_bcr`.
    gex_cells
        :func:`read_gex_cells` of the annotated gene-expression data.
    sheet
        The sample sheet (all samples, with or without BCR).
    productive_only
        As for :func:`cartrack.bcr.index_chains`.
    sequence, identity, split_light, light_only, include_multichain
        As for :func:`define_clones`.
    post_min_day, alpha, dp_min_fraction, dp_min_baseline_cells
        As for :func:`clone_tables`.
    recovery_b_fraction
        Blood ``b_fraction`` that counts as B-cell recovery (:func:`b_recovery`).
    cd19_gene, bcma_gene, cd19_protein, bcma_protein
        As for :func:`double_positive_cells`.
    cd19_min_counts, bcma_min_counts, cd19_min_protein, bcma_min_protein
        As for :func:`double_positive_cells`.
    n_jobs
        Threads for scirpy.

    Returns
    -------
    :class:`CloneResults`; ``airr`` has obs ``clone_id``, ``isotype``, ``shm``,
    ``ighv4_34``, ``b_lineage`` and the sheet's columns; ``cell_clones`` has one row per BCR
    cell: ``cell, clone_id, isotype, shm, ighv4_34``.
    """
    meta = sheet_table(sheet)
    airr = merge_bcr(samples)
    unknown = sorted(set(airr.obs["sample"].astype(str)) - set(meta.index))
    if unknown:
        raise InputError(f"BCR samples not in the sample sheet: {', '.join(unknown)}")
    for col in ("patient", "day", "tissue", "timepoint"):
        airr.obs[col] = meta.loc[airr.obs["sample"].astype(str), col].to_numpy()
    index_chains(airr, productive_only=productive_only)
    define_clones(
        airr,
        sequence=sequence,
        identity=identity,
        split_light=split_light,
        light_only=light_only,
        include_multichain=include_multichain,
        n_jobs=n_jobs,
    )
    ann = cell_annotations(airr, sequence=sequence)
    for col in ann.columns:
        airr.obs[col] = ann[col]
    gex = gex_cells.copy()
    gex["double_positive"] = double_positive_cells(
        gex,
        cd19_gene=cd19_gene,
        bcma_gene=bcma_gene,
        cd19_protein=cd19_protein,
        bcma_protein=bcma_protein,
        cd19_min_counts=cd19_min_counts,
        bcma_min_counts=bcma_min_counts,
        cd19_min_protein=cd19_min_protein,
        bcma_min_protein=bcma_min_protein,
    )
    ctype = gex["cell_type"].reindex(airr.obs_names).astype(object)
    airr.obs["has_gex"] = airr.obs_names.isin(gex.index)
    airr.obs["b_lineage"] = ctype.isin(B_LINEAGE_TYPES).to_numpy()
    cells = airr.obs.copy()
    tracked = tracked_cells(cells, gex, meta)
    clones, timeline = clone_tables(
        tracked,
        meta,
        post_min_day=post_min_day,
        alpha=alpha,
        dp_min_fraction=dp_min_fraction,
        dp_min_baseline_cells=dp_min_baseline_cells,
    )
    b_cells = b_cell_table(gex, cells, tracked, meta)
    elimination = elimination_table(clones, b_cells, recovery_level=recovery_b_fraction)
    qc = chain_qc_table(airr, gex, meta)
    # no `sample` here: the table is joined into gex.obs, which has its own
    cell_clones = cells[["clone_id", "isotype", "shm", "ighv4_34"]].copy()
    cell_clones.insert(0, "cell", cells.index)
    for col in airr.obs.columns:
        if airr.obs[col].dtype == object:  # h5ad cannot store object columns with None
            airr.obs[col] = airr.obs[col].astype("category")
    for key in [k for k in airr.uns if k.startswith(("ir_dist", "cc_"))]:
        del airr.uns[key]
    airr.uns["tracking"] = {
        "post_min_day": post_min_day,
        "alpha": alpha,
        "recovery_b_fraction": recovery_b_fraction,
        "dp_min_fraction": dp_min_fraction,
        "dp_min_baseline_cells": dp_min_baseline_cells,
    }
    return CloneResults(
        airr, cell_clones.reset_index(drop=True), qc, clones, timeline, b_cells, elimination
    )
