"""The demo-cohort simulator: real formats, determinism, realism, the scenarios' truth."""

import filecmp

import numpy as np
import pandas as pd
import pytest

from cartrack import simulate_bcr as bcr
from cartrack.design import B_CELLS
from cartrack.io import read_gex
from cartrack.simulate import SCENARIOS, Cohort, interpolate, write_cohort

IFN = ["IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1"]
BAFF = ["TNFRSF13C", "TNFRSF13B", "NFKB2", "RELB", "TNFSF13B"]


def sheet(tmp_path, rows):
    df = pd.DataFrame(rows, columns=["sample", "patient", "day", "tissue", "gex", "bcr"])
    df["gex"] = [str(tmp_path / g) for g in df["gex"]]
    df["bcr"] = [str(tmp_path / b) if b else "" for b in df["bcr"]]
    return df


def rows_for(patient, days, fmt):
    bcr_file = "airr.tsv" if fmt == "airr" else "filtered_contig_annotations.csv"
    return [
        (f"{patient}_{tissue}_{day}", patient, day, tissue, f"{patient}_{tissue}_{day}/m.h5",
         f"{patient}_{tissue}_{day}/{bcr_file}")
        for tissue, day in days
    ]  # fmt: skip


# One patient per scenario (reference, persistent, null, non_recovering), in sorted order.
ROWS = (
    rows_for("P1", [("PB", -3), ("PB", 14), ("PB", 180), ("BM", -3)], "10x")
    + rows_for("P2", [("PB", -1), ("PB", 27), ("PB", 182)], "airr")
    + rows_for("P3", [("PB", -2), ("PB", 90)], "10x")
    + rows_for("P4", [("PB", -4), ("PB", 180), ("BM", -4)], "airr")
)
ROWS[1] = (*ROWS[1][:4], "P1_PB_14/mtx", ROWS[1][5])


def simulate(folder, cells=300, seed=3):
    write_cohort(
        sheet(folder, ROWS),
        ifn_genes=IFN,
        baff_genes=BAFF,
        truth_dir=folder / "truth",
        cells_per_sample=cells,
        seed=seed,
    )
    return folder


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def truth(cohort_dir):
    read = {"keep_default_na": False, "na_values": [""]}
    names = ["cells", "clones", "patients", "signatures"]
    return {
        n: pd.read_csv(cohort_dir / "truth" / f"truth_{n}.tsv", sep="\t", **read) for n in names
    }


@pytest.fixture(scope="module")
def expression(cohort_dir, truth):
    """Raw counts of every sample with its truth rows (good singlets only)."""
    out = []
    for sample, gex in [(r[0], r[4]) for r in ROWS]:
        adata, _ = read_gex(cohort_dir / gex, sample=sample)
        t = truth["cells"][truth["cells"]["sample"] == sample].reset_index(drop=True)
        adata.obs = adata.obs.reset_index(drop=True).join(t.drop(columns=["barcode", "sample"]))
        out.append(adata[~adata.obs["low_quality"] & ~adata.obs["doublet"]].copy())
    import anndata as ad

    return ad.concat(out)


def detection(adata, gene, cell_types, *, dp=None):
    """Share of cells of `cell_types` (optionally only DP-programme cells or not) with the gene."""
    keep = adata.obs["cell_type"].isin(cell_types).to_numpy()
    if dp is not None:
        keep &= adata.obs["double_positive_cell"].astype(bool).to_numpy() == dp
    sub = adata[keep, gene].X
    return float((sub.toarray() > 0).mean())


def contigs(cohort_dir, fmt):
    frames = []
    for r in ROWS:
        path = cohort_dir / r[5]
        if (fmt == "airr") == path.name.endswith(".tsv"):
            table = pd.read_csv(path, sep="\t" if fmt == "airr" else ",", keep_default_na=False)
            frames.append(table.assign(file=r[0]))
    return pd.concat(frames, ignore_index=True)


def test_files_are_real_cell_ranger_formats(cohort_dir, truth):
    for sample, path in [("P1_PB_-3", "P1_PB_-3/m.h5"), ("P1_PB_14", "P1_PB_14/mtx")]:
        gex, prot = read_gex(cohort_dir / path, sample=sample)
        assert prot is None
        cells = truth["cells"]
        assert list(gex.obs["barcode"]) == list(cells.loc[cells["sample"] == sample, "barcode"])
        assert {"CAR_CD19", "CAR_BCMA", "CD19", "TNFRSF17", "MT-ND1"} <= set(gex.var_names)
    tenx = contigs(cohort_dir, "10x")
    assert {"barcode", "chain", "v_gene", "cdr3", "cdr3_nt", "productive", "umis"} <= set(tenx)
    assert "sequence_alignment" not in tenx and not tenx["v_gene"].str.contains(r"\*").any()
    airr = contigs(cohort_dir, "airr")
    need = {"cell_id", "locus", "v_call", "junction", "junction_aa", "sequence_alignment"}
    need |= {"germline_alignment", "v_sequence_start", "v_sequence_end", "j_sequence_start"}
    assert need <= set(airr)
    assert (airr["sequence_alignment"].str.len() == airr["germline_alignment"].str.len()).all()
    heavy = airr[airr["locus"] == "IGH"]
    assert heavy["germline_alignment"].str.contains("N").mean() > 0.8  # N additions masked
    assert (airr["v_sequence_end"].astype(int) < airr["j_sequence_start"].astype(int)).all()


def test_same_seed_same_bytes(cohort_dir, tmp_path):
    other = simulate(tmp_path)
    for r in ROWS[:6]:
        for rel in (r[4], r[5]):
            path = cohort_dir / rel
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            for f in files:
                assert filecmp.cmp(f, other / f.relative_to(cohort_dir), shallow=False), f
    for name in ["cells", "clones", "patients", "signatures"]:
        rel = f"truth/truth_{name}.tsv"
        assert filecmp.cmp(cohort_dir / rel, other / rel, shallow=False), rel


def test_markers_are_detected_at_realistic_rates(expression):
    """CD19 in 30-60 % of B cells and fewer plasmablasts; BCMA in most antibody-secreting
    cells and a few percent of memory B cells; no marker is exactly 0 elsewhere."""
    asc = ["plasmablast", "plasma_cell"]
    assert 0.3 <= detection(expression, "CD19", B_CELLS) <= 0.6
    cd19_b = detection(expression, "CD19", B_CELLS)
    assert detection(expression, "CD19", ["plasmablast"], dp=False) < 0.75 * cd19_b
    assert detection(expression, "TNFRSF17", asc) >= 0.6
    assert detection(expression, "TNFRSF17", ["B_memory"]) <= 0.15
    assert detection(expression, "MS4A1", ["T_CD4", "T_CD8"]) > 0  # ambient / trace
    assert detection(expression, "HBB", ["T_CD4", "T_CD8"]) > 0.05  # ambient red-cell RNA
    for gene, types in [("CD27", ["T_CD4"]), ("ITGAX", ["monocyte"]), ("TBX21", ["NK"]),
                        ("CD38", ["NK"]), ("CD28", ["plasma_cell"])]:  # fmt: skip
        assert detection(expression, gene, types) > 0.2, gene


def test_depth_varies_between_samples(expression):
    total = pd.Series(np.asarray(expression.X.sum(axis=1)).ravel(), index=expression.obs_names)
    median = total.groupby(
        expression.obs["patient"].astype(str) + expression.obs["day"].astype(str)
    ).median()
    assert 2000 <= median.median() <= 8000
    assert median.max() / median.min() >= 1.5


def test_car_t_cells_proliferate_at_d14(truth, expression):
    cells = truth["cells"]
    d14 = cells[(cells["day"] == 14)]
    car = d14[d14["car_t"]]
    assert len(car) > 10 and car["proliferating"].mean() >= 0.5
    assert not cells.loc[cells["day"] <= 0, "car_t"].any()
    assert set(car["car_construct"]) == {"CAR_CD19", "CAR_BCMA"}
    assert car["t_clonotype"].value_counts().iloc[0] >= 3  # expanded CAR-T clonotypes
    mki67 = expression[expression.obs["car_t"].astype(bool) & (expression.obs["day"] == 14)]
    assert detection(mki67, "MKI67", ["T_CD4", "T_CD8"]) > 0.3


def test_shm_by_cell_type(truth):
    cells = truth["cells"].dropna(subset=["mu_freq"])
    median = cells.groupby("cell_type")["mu_freq"].median()
    assert median["B_naive"] <= 0.02
    assert 0.03 <= median["B_memory"] <= 0.12
    assert 0.05 <= median["plasma_cell"] <= 0.17


def test_junctions_come_from_germline_segments():
    rng = np.random.default_rng(0)
    germ = bcr.load_germline()
    chains = [bcr.recombine(rng, germ, "IGH") for _ in range(200)]
    aa = [c.junction_aa for c in chains]
    assert all(a[0] == "C" and a[-1] in "WF" and "*" not in a for a in aa)
    ends = pd.Series([a[-4:] for a in aa]).value_counts()
    assert ends.iloc[0] >= 20  # J-encoded ends shared by unrelated junctions
    assert len(set(aa)) >= 195
    lengths = pd.Series([len(a) for a in aa])
    assert 12 <= lengths.median() <= 20


def test_mutate_keeps_the_chain_productive():
    rng = np.random.default_rng(1)
    germ = bcr.load_germline()
    r = bcr.recombine(rng, germ, "IGK")
    m = bcr.mutate(rng, r, 20)
    assert (
        m.v_mismatches()
        + sum(a != b for a, b in zip(m.sequence[r.v_end :], r.sequence[r.v_end :], strict=True))
        == 20
    )
    assert "*" not in bcr.translate(m.sequence[r.v.anchor % 3 :])
    assert m.junction_aa[0] == "C" and m.junction_aa[-1] in "WF"


def test_recoded_junction_is_convergent():
    rng = np.random.default_rng(2)
    r = bcr.recombine(rng, bcr.load_germline(), "IGH")
    c = bcr.recode_junction(rng, r)
    assert c.junction_aa == r.junction_aa and c.junction != r.junction


def test_clone_members_share_their_ancestors_mutations():
    """Issue 11: two plasma cells of one clone descend from common mutated ancestors, so
    they differ by far less than the sum of their mutation loads (a star tree, each cell
    mutated independently from the founder, puts their junctions about 0.1-0.2 apart)."""
    rng = np.random.default_rng(4)
    germ = bcr.load_germline()
    shared, junction = [], []
    for _ in range(200):
        lineage = bcr.Lineage(rng, bcr.mutate(rng, bcr.recombine(rng, germ, "IGH"), 5))
        a, b = lineage.draw("plasma_cell"), lineage.draw("plasma_cell")
        assert 0.03 <= a.mu_freq <= 0.16 and 0.03 <= b.mu_freq <= 0.16
        diff = sum(x != y for x, y in zip(a.sequence[: a.v_end], b.sequence, strict=False))
        shared.append(diff / (a.v_mismatches() + b.v_mismatches()))
        junction.append(sum(x != y for x, y in zip(a.junction, b.junction, strict=True)))
        junction[-1] /= len(a.junction)
    assert np.median(shared) < 0.5
    assert np.median(junction) < 0.08
    assert np.mean(np.array(junction) > 0.15) < 0.1


def test_bcr_recovery_doublets_ambient_and_calls(cohort_dir, truth):
    cells = truth["cells"]
    b = cells[cells["lineage"].isin(["B", "plasma"]) & ~cells["doublet"]]
    heavy = b.groupby("sample")["heavy_recovered"].mean()
    assert 0.35 <= heavy.median() <= 0.85
    pcs = b[b["cell_type"] == "plasma_cell"]
    assert (pcs["light_recovered"] & ~pcs["heavy_recovered"]).any()  # light-only cells
    assert cells.loc[cells["lineage"] == "T", "ambient_bcr"].any()
    b_partner = cells["doublet_type"].isin([*B_CELLS, "plasmablast", "plasma_cell"])
    assert (cells["doublet"] & cells["cell_type"].isin(B_CELLS) & b_partner).any()
    airr = contigs(cohort_dir, "airr")
    assert airr["v_call"].str.contains(",").any()  # ambiguous calls
    assert airr["v_call"].str.contains("IGKV1D-39").any()  # duplicated gene
    assert airr["v_call"].str.contains(r"\*\d+_[ACGT]\d+[ACGT]").any()  # novel allele


def test_b_b_doublets_carry_two_heavy_chains(tmp_path):
    rows = [("S", "P1", -3, "PB", "S/m.h5", "S/filtered_contig_annotations.csv")]
    write_cohort(sheet(tmp_path, rows), ifn_genes=IFN, baff_genes=BAFF,
                 truth_dir=tmp_path / "truth", cells_per_sample=400, doublet_rate=0.3)  # fmt: skip
    truth = pd.read_csv(tmp_path / "truth" / "truth_cells.tsv", sep="\t", keep_default_na=False)
    tenx = pd.read_csv(tmp_path / "S" / "filtered_contig_annotations.csv")
    heavy = tenx[(tenx["chain"] == "IGH") & tenx["productive"]].groupby("barcode").size()
    two = heavy[heavy >= 2].index
    assert len(two) > 0
    assert truth.set_index("barcode").loc[two, "doublet"].all()


def test_scenarios_are_in_the_truth_tables(truth):
    patients = truth["patients"].set_index("patient")
    assert list(patients["scenario"]) == [s["scenario"] for s in SCENARIOS]
    assert patients.loc["P4", "b_recovery_from_day"] != patients.loc["P4", "b_recovery_from_day"]
    assert patients.loc["P1", "b_recovery_from_day"] == 80
    clones = truth["clones"]
    by = clones.groupby("scenario")
    assert set(by.get_group("reference")["fate"]) == {"eliminated"}
    persistent = by.get_group("persistent")
    assert (persistent["double_positive"] & (persistent["fate"] == "persistent")).any()
    assert persistent["convergent_with"].notna().any()
    marrow = clones[(clones["patient"] == "P4") & (clones["kind"] == "llpc")]
    assert "not_assessable" in set(marrow["expected_status"])
    assert set(by.get_group("same_repertoire")["fate"]) == {"persistent"}
    cells = truth["cells"]
    b = cells["lineage"].isin(["B"])
    assert cells[b & (cells["patient"] == "P4") & (cells["day"] > 0)].empty
    assert not cells[b & (cells["patient"] == "P3") & (cells["day"] > 0)].empty
    n = cells.groupby("sample").size()
    assert n["P3_PB_90"] >= 2 * n["P3_PB_-2"]  # null patient: post deeper
    assert n["P4_PB_-4"] <= 0.5 * n["P1_PB_-3"]  # shallow baseline


def test_signature_truth_separates_true_fall_from_composition(truth):
    sig = truth["signatures"]
    mono = sig[sig["cell_type"] == "monocyte"].set_index(["patient", "day"])["ifn_fold"]
    assert mono["P1", 180] < mono["P1", -3]  # true fall within the cell type
    assert mono["P2", 182] == mono["P2", -1]  # composition only
    cells = truth["cells"]
    mono_share = cells.groupby(["patient", "day"])["cell_type"].apply(
        lambda t: (t == "monocyte").mean()
    )
    assert mono_share["P2", 182] < mono_share["P2", -1]


def test_interpolate_and_recovery_schedule():
    assert interpolate(7, [(0, 1.0), (14, 3.0)]) == 2.0
    assert interpolate(100, [(0, 1.0), (14, 3.0)]) == 3.0
    df = pd.DataFrame({"patient": ["P1", "P2"], "day": [0, 0], "tissue": ["PB", "PB"]})
    cohort = Cohort(df, ifn_genes=IFN, baff_genes=BAFF)
    assert "B_naive" not in cohort.composition("P1", 14, "PB", {})
    assert cohort.composition("P1", 180, "PB", {})["B_naive"] > 0
