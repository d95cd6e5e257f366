"""B-cell clones: definition within each patient across all its samples.

Clone definition (:func:`define_clones`) follows Immcantation's single-cell practice:
SCOPer ``hierarchicalClones(method="nt", linkage="single", normalize="len", first=FALSE,
only_heavy=TRUE)`` with SHazaM's data-driven threshold, then light-chain refinement in the
spirit of SCOPer's ``split_light`` / dowser ``resolveLightChains``:

1. Heavy chain first. Cells fall into *V-J-length partitions* of their patient
   (:func:`vjl_partitions`): equal junction length, and V calls that overlap and J calls
   that overlap. A call is a set of genes (:func:`gene_set`: every gene of an ambiguous call,
   alleles stripped, duplicated germline genes as one: ``IGKV1D-39`` = ``IGKV1-39``,
   ``IGHV1-69D`` = ``IGHV1-69``, and the groups of :data:`EQUIVALENT_GENES`), and overlap is
   transitive within a patient as in alakazam's ``groupGenes(first=FALSE)``.
2. Within a partition, junctions are clustered by length-normalised Hamming distance (on
   nucleotides by default), single linkage (SCOPer's default; ``average`` as an option), at
   the patient's cut-off: data-driven from the distance-to-nearest distribution
   (:mod:`cartrack.clone_threshold`) or fixed.
3. Light chains refine (``split_light``): inside a heavy clone, cells are kept together when
   their light chains have overlapping V and J genes *or* light junctions of equal length
   within the light cut-off (the heavy one, or ``light_threshold`` when larger: never
   tighter). A clone is split only where light genes differ and light junctions are far
   apart: a light-chain V miscall or SHM in the light junction cannot split a clone.
   Either of two light chains may link a cell; cells of a split clone without a light chain
   join its largest light sub-clone (ties: the alphabetically first cell).
4. Cells without a usable heavy chain (light-only, common in plasma cells): ``exclude``
   leaves them without a clone; ``attach`` puts a cell into a clone when its light chain
   falls into a light-chain cluster (the rule of steps 1-2 on light chains) with cells of
   exactly one clone; ``separate`` clusters them among themselves into ``<patient>_L<n>``.

Why not scirpy here: ``define_clonotype_clusters(same_v_gene=True)`` compares V calls as
exact strings (no overlap of ambiguous calls, no duplicated genes), and ``ir_dist`` computes
junction distances over the whole cohort rather than per patient and V-J-length partition;
clones never cross patients, so per-partition distances are both what SCOPer does and
much faster (benchmarks/results_clones.md). scirpy still indexes the chains
(:func:`cartrack.bcr.index_chains`: primary heavy ``VDJ_1``, light ``VJ_1``/``VJ_2``).

``clone_id`` is ``<patient>_C<n>``, numbered by decreasing size within the patient, so it is
unique across the cohort.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, replace

import anndata as ad
import numpy as np
import pandas as pd

from cartrack.airr_fields import gene_name, is_missing
from cartrack.clone_threshold import Threshold, encode, find_threshold, pairwise_hamming
from cartrack.design import B_LINEAGE
from cartrack.params import CloneParams

log = logging.getLogger(__name__)

B_LINEAGE_TYPES = tuple(B_LINEAGE)
LIGHT_ONLY_MODES = ("exclude", "attach", "separate")
LINKAGES = ("single", "average")
#: Genes counted as one for clone calling, named by the first. IGHV3-30-3 and IGHV3-30-5 are
#: IMGT duplicates of IGHV3-30 (identical or near-identical alleles); IGHV3-33 differs from
#: IGHV3-30 at a handful of positions, fewer than a switched clone's SHM, so aligners' best
#: hits flip between them within one clone (the config can change this list).
EQUIVALENT_GENES = (("IGHV3-30", "IGHV3-30-3", "IGHV3-30-5", "IGHV3-33"),)
#: IMGT duplicated genes: IGKV1D-39 (distal IGK copy) and IGHV1-69D (second copy).
_DUPLICATE_PREFIX = re.compile(r"^(IG[HKL]V\d+)D-")
_DUPLICATE_SUFFIX = re.compile(r"^(IG[HKL][VDJ][\d-]*\d)D$")
#: Tolerance of distance comparisons (distances are fractions of the junction length).
_EPS = 1e-6
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
    chain), ``mu_freq`` (V-region mutation frequency of the primary heavy chain from its
    alignment, :func:`cartrack.bcr.mu_freq`; missing without an alignment), ``shm``
    (``mu_freq``, else ``1 - v_identity``, else missing), ``ighv4_34``
    (nullable bool; missing without a heavy chain), ``has_heavy`` and ``has_light``.
    """
    seq = "junction_aa" if sequence == "aa" else "junction"
    fields = ["v_call", "j_call", "c_call", "cdr3_aa", "junction_aa", "v_identity", "mu_freq", seq]
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
    out["mu_freq"] = pd.to_numeric(ch["VDJ_1_mu_freq"], errors="coerce").astype(float)
    out["shm"] = out["mu_freq"].fillna(shm_from_identity(ch["VDJ_1_v_identity"]))
    has_heavy = ch[f"VDJ_1_{seq}"].notna()
    v4_34 = out["heavy_v_gene"].eq("IGHV4-34")
    out["ighv4_34"] = pd.array(np.where(has_heavy, v4_34, pd.NA), dtype="boolean")
    out["has_heavy"] = has_heavy.to_numpy()
    out["has_light"] = ch[f"VJ_1_{seq}"].notna().to_numpy()
    return out


# --------------------------------------------------------------------------------------
# clone definition
# --------------------------------------------------------------------------------------
def _equivalence_map(equivalent_genes: Sequence[Sequence[str]]) -> dict[str, str]:
    return {g.upper(): group[0].upper() for group in equivalent_genes for g in group}


def gene_set(call: object, equivalent_genes: Sequence[Sequence[str]] = EQUIVALENT_GENES) -> str:
    """The genes of a (possibly ambiguous) V/J call, alleles stripped, duplicates merged.

    ``IGHV3-30*18,IGHV3-30-5*01`` -> ``IGHV3-30``; ``IGKV1D-39*01`` -> ``IGKV1-39``;
    ``IGHV1-69D*01`` -> ``IGHV1-69``; ``IGHV1-2*02,IGHV1-46*01`` -> ``IGHV1-2,IGHV1-46``.
    Duplicated germline genes (IMGT names them with ``D``: ``IGKV1D-39`` is the distal copy
    of ``IGKV1-39``, ``IGHV1-69D`` the second copy of ``IGHV1-69``) are one gene; so is each
    group of `equivalent_genes` (named by its first member). Returns the sorted genes joined
    by ``,``, or an empty string for a missing call.
    """
    if is_missing(call):
        return ""
    equiv = _equivalence_map(equivalent_genes)
    genes = set()
    for token in re.split(r",|\bor\b", str(call)):
        gene = gene_name(token)
        if not gene:
            continue
        gene = _DUPLICATE_PREFIX.sub(r"\1-", _DUPLICATE_SUFFIX.sub(r"\1", gene.upper()))
        genes.add(equiv.get(gene, gene))
    return ",".join(sorted(genes))


def _gene_sets(calls: pd.Series, equivalent_genes) -> pd.Series:
    """:func:`gene_set` of every call (computed once per distinct call)."""
    uniq = pd.unique(calls.astype(object))
    table = {c: gene_set(c, equivalent_genes) for c in uniq}
    return calls.astype(object).map(table).fillna("")


def _components(n: int, rows, cols) -> np.ndarray:
    """Connected components of an undirected graph on n nodes given by edge lists."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def vjl_partitions(
    scope: pd.Series, v_genes: pd.Series, j_genes: pd.Series, lengths: pd.Series
) -> np.ndarray:
    """V-J-length partitions allowing ambiguous calls (SCOPer/alakazam ``first=FALSE``).

    Two sequences of one `scope` (the patient) share a partition when their junctions have
    equal length and their V calls and their J calls overlap (:func:`gene_set` strings),
    transitively: an ambiguous ``IGHV3-23,IGHV3-30`` call joins the ``IGHV3-23`` and the
    ``IGHV3-30`` sequences of that length, as in alakazam's ``groupGenes(first=FALSE)``.
    Returns one integer label per sequence.
    """
    items, keys = [], []
    for i, (s, vs, js, n) in enumerate(zip(scope, v_genes, j_genes, lengths, strict=True)):
        for v in vs.split(","):
            for j in js.split(","):
                items.append(i)
                keys.append(f"{s}\t{v}\t{j}\t{n}")
    codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
    n = len(scope)
    return _components(n + len(uniq), items, n + codes)[:n]


def _partition_distances(junctions: pd.Series, parts: np.ndarray) -> list[tuple]:
    """Partitions with two or more distinct junctions: positions of their sequences, the
    unique-junction index of each, and the distances between the unique junctions."""
    frame = pd.DataFrame({"part": parts, "junction": junctions.to_numpy()})
    n_unique = frame.groupby("part")["junction"].transform("nunique").to_numpy()
    multi = frame.loc[n_unique > 1]
    out = []
    for _, g in multi.groupby("part", sort=False):
        codes, uniq = pd.factorize(g["junction"])
        out.append((g.index.to_numpy(), codes, pairwise_hamming(encode(uniq))))
    return out


def _nearest(partitions: list[tuple], n: int) -> np.ndarray:
    """Distance to the nearest non-identical junction of the partition (NaN when none)."""
    nearest = np.full(n, np.nan)
    for pos, codes, dist in partitions:
        d = np.where(dist > 0, dist, np.inf).min(axis=1)
        nearest[pos] = np.where(np.isfinite(d), d, np.nan)[codes]
    return nearest


def _cut(
    partitions: list[tuple], parts: np.ndarray, cutoffs: np.ndarray, linkage: str
) -> np.ndarray:
    """Clusters within partitions at each sequence's cut-off (single or average linkage);
    a partition with one distinct junction is one cluster."""
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as hlinkage
    from scipy.spatial.distance import squareform

    labels = np.asarray(parts, dtype=np.int64).copy()
    offset = int(labels.max()) + 1 if len(labels) else 0
    if linkage == "single":  # one graph of all partitions' unique junctions
        rows, cols, base = [], [], 0
        for pos, _codes, dist in partitions:
            r, c = np.nonzero(dist <= float(cutoffs[pos[0]]) + _EPS)
            rows.append(base + r)
            cols.append(base + c)
            base += len(dist)
        if not partitions:
            return labels
        comp = _components(base, np.concatenate(rows), np.concatenate(cols))
        base = 0
        for pos, codes, dist in partitions:
            labels[pos] = offset + comp[base + codes]
            base += len(dist)
        return labels
    for pos, codes, dist in partitions:
        tree = hlinkage(squareform(dist, checks=False), method=linkage)
        local = fcluster(tree, t=float(cutoffs[pos[0]]) + _EPS, criterion="distance") - 1
        labels[pos] = offset + local[codes]
        offset += int(local.max()) + 1
    return labels


def _light_chains(chains: pd.DataFrame, seq: str, equivalent_genes) -> pd.DataFrame:
    """One row per light chain (VJ_1, VJ_2) of each cell: cell, v, j, junction."""
    rows = []
    for arm in ("VJ_1", "VJ_2"):
        raw_v = chains[f"{arm}_v_call_raw"].fillna(chains[f"{arm}_v_call"])
        raw_j = chains[f"{arm}_j_call_raw"].fillna(chains[f"{arm}_j_call"])
        part = pd.DataFrame(
            {
                "cell": chains.index,
                "v": _gene_sets(raw_v, equivalent_genes).to_numpy(),
                "j": _gene_sets(raw_j, equivalent_genes).to_numpy(),
                "junction": chains[f"{arm}_{seq}"].to_numpy(),
                "arm": arm,
            }
        )
        rows.append(part.loc[part["junction"].notna() & part["v"].ne("") & part["j"].ne("")])
    return pd.concat(rows, ignore_index=True)


def _split_by_light(clone: pd.Series, light: pd.DataFrame, cutoff: pd.Series) -> pd.Series:
    """Split heavy clones whose light chains disagree (module docstring, step 2)."""
    lc = light.loc[light["cell"].isin(clone.index)].copy()
    lc["clone"] = clone[lc["cell"]].to_numpy()
    lc["config"] = lc["v"] + "|" + lc["j"] + "|" + lc["junction"].astype(str)
    n_configs = lc.groupby("clone")["config"].nunique()
    lc = lc.loc[lc["clone"].isin(n_configs.index[n_configs > 1])]
    if lc.empty:
        return clone
    cells = pd.Index(pd.unique(lc["cell"]))
    n = len(cells)
    cell_pos = cells.get_indexer(lc["cell"])
    # nodes: cells, then (clone, V, J) gene nodes, then (clone, junction) nodes
    gene_keys, gene_cells = [], []
    for i, c, vs, js in zip(cell_pos, lc["clone"], lc["v"], lc["j"], strict=True):
        for v in vs.split(","):
            for j in js.split(","):
                gene_keys.append(f"{c}\t{v}\t{j}")
                gene_cells.append(i)
    gcode, guniq = pd.factorize(pd.Series(gene_keys, dtype=object))
    jkey = lc["clone"].astype(str) + "\t" + lc["junction"].astype(str)
    jcode, juniq = pd.factorize(jkey)
    jbase = n + len(guniq)
    rows = [np.asarray(gene_cells), cell_pos]
    cols = [n + gcode, jbase + jcode]
    # junction nodes of one clone and length within the (light) cut-off are linked
    jframe = pd.DataFrame({"key": juniq}).assign(
        clone=lambda f: f["key"].str.split("\t").str[0],
        junction=lambda f: f["key"].str.split("\t").str[1],
    )
    jframe["length"] = jframe["junction"].str.len()
    patient_cut = lc.drop_duplicates("clone").set_index("clone")["cell"].map(cutoff)
    for (c, _), part in jframe.groupby(["clone", "length"], sort=False):
        if len(part) < 2:
            continue
        dist = pairwise_hamming(encode(part["junction"]))
        r, cc = np.nonzero(np.triu(dist <= float(patient_cut[c]) + _EPS, k=1))
        idx = part.index.to_numpy()
        rows.append(jbase + idx[r])
        cols.append(jbase + idx[cc])
    comp = _components(jbase + len(juniq), np.concatenate(rows), np.concatenate(cols))[:n]
    sub = pd.Series(comp, index=cells)
    out = clone.copy()
    out[cells] = clone[cells] + "." + sub.astype(str)
    # cells of a split clone without a light chain join its largest light sub-clone
    part = pd.DataFrame({"heavy": clone[cells], "clone": out[cells], "cell": cells})
    sizes = part.groupby(["heavy", "clone"]).agg(n=("cell", "size"), first=("cell", "min"))
    sizes = sizes.reset_index().sort_values(["heavy", "n", "first"], ascending=[True, False, True])
    largest = sizes.drop_duplicates("heavy").set_index("heavy")["clone"]
    split = set(lc["clone"])
    orphans = clone.index[clone.isin(split) & ~clone.index.isin(cells)]
    out[orphans] = clone[orphans].map(largest)
    return out


def _light_clusters(light: pd.DataFrame, patient: pd.Series, cutoff: pd.Series) -> pd.Series:
    """Single-linkage clusters of primary light chains within V-J-length partitions."""
    lc = light.loc[light["arm"].eq("VJ_1")].reset_index(drop=True)
    if lc.empty:
        return pd.Series(dtype=object)
    scope = patient[lc["cell"]].astype(str).to_numpy()
    parts = vjl_partitions(pd.Series(scope), lc["v"], lc["j"], lc["junction"].astype(str).str.len())
    partitions = _partition_distances(lc["junction"].astype(str), parts)
    labels = _cut(partitions, parts, cutoff[lc["cell"]].to_numpy(), "single")
    return pd.Series(labels.astype(str), index=lc["cell"].to_numpy())


def define_clones(
    airr: ad.AnnData,
    params: CloneParams | None = None,
    *,
    group_key: str = "patient",
    key_added: str = "clone_id",
) -> pd.DataFrame:
    """Define B-cell clones within each patient (see the module docstring for the rules).

    Parameters
    ----------
    airr
        BCR AnnData after :func:`cartrack.bcr.index_chains`, with ``obs[group_key]``.
    params
        :class:`cartrack.params.CloneParams` (the schema's defaults when None).
    group_key
        ``obs`` column that clones must not cross (the patient).
    key_added
        ``obs`` column for the clone id; ``obs[f"{key_added}_chain"]`` says whether the clone
        was found by the ``heavy`` or (light-only cells) the ``light`` chain.

    Returns
    -------
    ``clone_thresholds.tsv``: one row per patient with ``patient, method, threshold,
    n_sequences, note`` (also in ``uns["clone_thresholds"]``). ``obs["dist_nearest"]`` holds
    each heavy chain's distance to its nearest non-identical neighbour (SHazaM's column).
    """
    p = params if params is not None else CloneParams.from_config()
    if p.light_only not in LIGHT_ONLY_MODES:
        raise ValueError(f"light_only must be one of {LIGHT_ONLY_MODES}, got {p.light_only!r}")
    if p.sequence not in ("aa", "nt"):
        raise ValueError(f"sequence must be 'aa' or 'nt', got {p.sequence!r}")
    if p.linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {p.linkage!r}")
    fields = ["v_call", "j_call", "v_call_raw", "j_call_raw", "junction", "junction_aa"]
    chains = _chain_fields(airr, fields, ["VDJ_1", "VJ_1", "VJ_2"])
    if p.sequence == "nt" and chains["VDJ_1_junction"].isna().all():
        log.warning("no heavy chain has a nucleotide junction: clones compare amino acids")
        p = replace(p, sequence="aa")
    seq = "junction_aa" if p.sequence == "aa" else "junction"
    for col in chains.columns:
        if col.endswith(seq):  # empty junctions are missing
            chains[col] = chains[col].where(chains[col].astype(str).str.len() > 0)
    rtype = airr.obs["receptor_type"].astype(str)
    usable = rtype.eq("BCR") | (rtype.eq("multichain") & p.include_multichain)
    patient = airr.obs[group_key].astype(str)
    hv = _gene_sets(chains["VDJ_1_v_call_raw"].fillna(chains["VDJ_1_v_call"]), p.equivalent_genes)
    hj = _gene_sets(chains["VDJ_1_j_call_raw"].fillna(chains["VDJ_1_j_call"]), p.equivalent_genes)
    heavy_ok = usable & hv.ne("") & hj.ne("") & chains[f"VDJ_1_{seq}"].notna()
    light = _light_chains(chains.loc[usable], seq, p.equivalent_genes)
    light_cells = set(light.loc[light["arm"].eq("VJ_1"), "cell"])
    light_only_cells = airr.obs_names[~heavy_ok.to_numpy() & airr.obs_names.isin(light_cells)]

    heavy = pd.DataFrame(
        {"patient": patient, "v": hv, "j": hj, "junction": chains[f"VDJ_1_{seq}"]}
    ).loc[heavy_ok]
    heavy["junction"] = heavy["junction"].astype(str)
    parts = vjl_partitions(heavy["patient"], heavy["v"], heavy["j"], heavy["junction"].str.len())
    partitions = _partition_distances(heavy["junction"], parts)
    nearest = pd.Series(_nearest(partitions, len(heavy)), index=heavy.index)
    thresholds = _patient_thresholds(heavy["patient"], nearest, p, patient.unique())
    cut = heavy["patient"].map(thresholds.set_index("patient")["threshold"]).to_numpy()
    clone = pd.Series(_cut(partitions, parts, cut, p.linkage).astype(str), index=heavy.index).map(
        lambda c: f"H{c}"
    )
    light_cut = thresholds.set_index("patient")["threshold"]
    if p.light_threshold is not None:
        light_cut = light_cut.clip(lower=p.light_threshold)
    cell_cut = patient.map(light_cut)
    if p.split_light and len(clone):
        clone = _split_by_light(clone, light, cell_cut)
    result = pd.Series(np.nan, index=airr.obs_names, dtype=object)
    basis = pd.Series(np.nan, index=airr.obs_names, dtype=object)
    result[clone.index] = clone
    basis[clone.index] = "heavy"
    if p.light_only == "separate" and len(light_only_cells):
        sub = light.loc[light["cell"].isin(light_only_cells)]
        lab = _light_clusters(sub, patient, cell_cut)
        result[lab.index] = "L" + lab
        basis[lab.index] = "light"
    elif p.light_only == "attach" and len(light_only_cells):
        lab = _light_clusters(light, patient, cell_cut)
        frame = pd.DataFrame({"light": lab, "clone": result.reindex(lab.index)})
        known = frame.dropna(subset=["clone"]).groupby("light")["clone"].agg(["nunique", "first"])
        unique = known.loc[known["nunique"] == 1, "first"]
        attached = frame.loc[frame.index.isin(light_only_cells), "light"].map(unique).dropna()
        result[attached.index] = attached
        basis[attached.index] = "light"
    airr.obs[key_added] = _name_clones(result, patient)
    airr.obs[f"{key_added}_chain"] = basis.where(airr.obs[key_added].notna())
    airr.obs["dist_nearest"] = nearest.reindex(airr.obs_names).to_numpy()
    airr.uns["clone_thresholds"] = thresholds
    airr.uns["clone_definition"] = {
        k: ([",".join(g) for g in v] if k == "equivalent_genes" else ("" if v is None else v))
        for k, v in asdict(p).items()
    } | {"group_key": group_key, "metric": "normalized_hamming"}
    n = airr.obs[key_added].notna().sum()
    log.info("%d of %d BCR cells in %d clones", n, airr.n_obs, airr.obs[key_added].nunique())
    return thresholds


def _patient_thresholds(
    patient: pd.Series, nearest: pd.Series, p: CloneParams, patients
) -> pd.DataFrame:
    """The cut-off of each patient: fixed, or from its distance-to-nearest distribution."""
    rows = []
    for name in sorted(map(str, patients)):
        d = nearest[patient.eq(name)]
        if p.threshold != "auto":
            t = Threshold(float(p.threshold), "fixed", int(d.notna().sum()))
        else:
            t = find_threshold(
                d,
                method=p.threshold_method,
                fallback=p.fallback_threshold,
                min_sequences=p.min_sequences,
                valley_ratio=p.valley_ratio,
                min_mode_fraction=p.min_mode_fraction,
                max_threshold=p.max_threshold,
                label=f"patient {name}",
            )
        rows.append({"patient": name, **asdict(t)})
    cols = ["patient", "method", "threshold", "n_sequences", "note"]
    return pd.DataFrame(rows, columns=cols)


def _name_clones(raw: pd.Series, group: pd.Series) -> pd.Series:
    """Cohort-unique clone ids ``<patient>_C<n>`` / ``<patient>_L<n>``, n by decreasing size."""
    frame = pd.DataFrame({"raw": raw, "group": group.astype(str)}).dropna(subset=["raw"])
    if frame.empty:
        return pd.Series(np.nan, index=raw.index, dtype=object)
    frame["cell"] = frame.index
    frame["kind"] = frame["raw"].str[0].map({"H": "C", "L": "L"})
    keys = ["group", "kind", "raw"]
    first = frame.sort_values("cell").drop_duplicates(keys).set_index(keys)["cell"]
    stats = frame.groupby(keys).size().rename("n").to_frame()
    stats["first"] = first.reindex(stats.index).to_numpy()
    stats = stats.reset_index().sort_values(
        ["group", "kind", "n", "first"], ascending=[True, True, False, True]
    )
    stats["rank"] = stats.groupby(["group", "kind"]).cumcount() + 1
    stats["clone_id"] = stats["group"] + "_" + stats["kind"] + stats["rank"].astype(str)
    ids = frame.merge(stats[["group", "raw", "clone_id"]], on=["group", "raw"], how="left")
    out = pd.Series(np.nan, index=raw.index, dtype=object)
    out[frame.index] = ids["clone_id"].to_numpy()
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


def nearest_distances(airr: ad.AnnData, *, group_key: str = "patient") -> pd.DataFrame:
    """``dist_to_nearest.tsv``: one row per heavy chain with a distance-to-nearest.

    Columns ``cell``, ``patient``, ``sample``, ``dist_nearest`` (from :func:`define_clones`);
    the table the distance-histogram figure draws.
    """
    obs = airr.obs
    if "dist_nearest" not in obs:
        return pd.DataFrame(columns=["cell", "patient", "sample", "dist_nearest"])
    d = pd.to_numeric(obs["dist_nearest"], errors="coerce")
    keep = d.notna().to_numpy()
    return pd.DataFrame(
        {
            "cell": obs.index[keep],
            "patient": obs.loc[keep, group_key].astype(str).to_numpy(),
            "sample": obs.loc[keep, "sample"].astype(str).to_numpy(),
            "dist_nearest": d[keep].to_numpy(),
        }
    )
