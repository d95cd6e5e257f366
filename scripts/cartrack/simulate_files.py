"""The demo cohort's files in real Cell Ranger formats: filtered feature-barcode matrices
(HDF5 or an mtx folder) and V(D)J contigs (10x contig CSV or AIRR rearrangement TSV)."""

import gzip
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from cartrack import simulate_bcr as bcr


def write_10x_h5(path: Path, counts, barcodes: list[str], features: list[str]) -> None:
    """Cell Ranger >= 3 filtered_feature_bc_matrix.h5 (genes x cells, CSC)."""
    m = sp.csc_matrix(counts.T.astype(np.int32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("data", data=m.data, compression="gzip")
        g.create_dataset("indices", data=m.indices.astype(np.int64), compression="gzip")
        g.create_dataset("indptr", data=m.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        fg = g.create_group("features")
        fg.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        fg.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(features)))
        fg.create_dataset("genome", data=np.array([b"GRCh38"] * len(features)))
        fg.create_dataset("id", data=np.array([feature_id(f) for f in features], dtype="S"))
        fg.create_dataset("name", data=np.array(features, dtype="S"))


def write_10x_mtx(folder: Path, counts, barcodes: list[str], features: list[str]) -> None:
    """Cell Ranger >= 3 filtered_feature_bc_matrix/ folder (gzipped mtx and tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(folder / "matrix.mtx.gz", "wb", mtime=0) as f:
        scipy.io.mmwrite(f, sp.coo_matrix(counts.T.astype(np.int32)), field="integer")
    with gzip.GzipFile(folder / "barcodes.tsv.gz", "wb", mtime=0) as f:
        f.write(("\n".join(barcodes) + "\n").encode())
    with gzip.GzipFile(folder / "features.tsv.gz", "wb", mtime=0) as f:
        f.write("".join(f"{feature_id(g)}\t{g}\tGene Expression\n" for g in features).encode())


def feature_id(name: str) -> str:
    return name if name.startswith("CAR_") else f"ENSG{abs(hash_str(name)) % 10**11:011d}"


def hash_str(s: str) -> int:
    """A stable string hash (Python's hash() is salted per process)."""
    h = 0
    for ch in s:
        h = (h * 131 + ord(ch)) % (2**61 - 1)
    return h


TENX_COLUMNS = [
    "barcode", "is_cell", "contig_id", "high_confidence", "length", "chain", "v_gene",
    "d_gene", "j_gene", "c_gene", "full_length", "productive", "cdr3", "cdr3_nt", "reads",
    "umis", "raw_clonotype_id", "raw_consensus_id",
]  # fmt: skip


def contig_records(truth, chains, rng, *, airr: bool) -> list[dict]:
    """AIRR (with alignments) or 10x CSV rows for every droplet's contigs."""
    rows = []
    for barcode, got in zip(truth["barcode"], chains, strict=True):
        for i, entry in enumerate(got, start=1):
            r, c_gene = entry[0], entry[1]
            umis = 1 if len(entry) > 2 else int(rng.integers(2, 30))
            cid = f"{barcode}_contig_{i}"
            c_gene = c_gene if r.locus == "IGH" else ("IGKC" if r.locus == "IGK" else "IGLC2")
            if airr:
                rows.append(bcr.airr_record(r, rng, cell_id=barcode, contig_id=cid,
                                            c_call=c_gene, umis=umis))  # fmt: skip
            else:
                rows.append(bcr.tenx_record(r, rng, barcode=barcode, contig_id=cid,
                                            c_gene=c_gene, umis=umis))  # fmt: skip
    return rows


def write_contigs_10x(path: Path, rows: list[dict]) -> None:
    """filtered_contig_annotations.csv, with a few non-productive contigs as real files."""
    extra = [
        {**r, "contig_id": r["contig_id"] + "_np", "productive": "False", "cdr3": "None",
         "cdr3_nt": "None", "umis": 1, "reads": 30}
        for r in rows[:: 40]
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows + extra, columns=TENX_COLUMNS).to_csv(path, index=False)


def write_contigs_airr(path: Path, rows: list[dict]) -> None:
    """AIRR rearrangement TSV (IgBLAST-style calls with sequence / germline alignments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=bcr.AIRR_COLUMNS).to_csv(path, sep="\t", index=False)
