"""B-cell clones: definition within each patient across all its samples.

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
"""

import logging
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from cartrack.bcr import (
    _clonotype_clusters,
    _exclude_missing_genes,
    gene_name,
)
from cartrack.design import B_LINEAGE

log = logging.getLogger(__name__)

B_LINEAGE_TYPES = tuple(B_LINEAGE)
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
