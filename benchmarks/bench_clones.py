"""Benchmark clone calling (run on demand, not a test).

Times :func:`cartrack.bcr.index_chains` + :func:`cartrack.clones.define_clones` on one
synthetic patient with N BCR+ cells and records the peak resident memory. Each size runs in a
fresh subprocess so peaks do not carry over. Results go to ``benchmarks/results_clones.md``.

    .venv/bin/python benchmarks/bench_clones.py --sizes 20000 100000 [200000] [--threads 1]

Synthetic repertoire (seeded): clone sizes from a discrete power law (about two thirds of the
cells in singletons), heavy junctions of 12-22 aa over 40 IGHV x 6 IGHJ genes, members of a
clone carry 0-2 amino-acid substitutions in the heavy junction; 80% of cells are paired,
12% heavy-only, 8% light-only; a quarter of expanded clones have a second light chain in
some members.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

AA = "ACDEFGHIKLMNPQRSTVWY"


def synthetic_airr(n_cells: int, seed: int = 0):
    """One patient's BCR AnnData in the layout of :func:`cartrack.bcr.read_bcr`."""
    import awkward as ak
    import numpy as np
    import pandas as pd
    from anndata import AnnData

    from cartrack.bcr import CORE_FIELDS, _record_type

    rng = np.random.default_rng(seed)
    v_genes = [f"IGHV{i // 8 + 1}-{i % 8 + 1}" for i in range(40)]
    j_genes = [f"IGHJ{i}" for i in range(1, 7)]
    kv = [f"IGKV{i}-{j}" for i in range(1, 5) for j in range(1, 6)]
    lv = [f"IGLV{i}-{j}" for i in range(1, 4) for j in range(1, 5)]

    def junction(n):
        return "C" + "".join(rng.choice(list(AA), size=n - 2)) + "W"

    sizes = []
    while sum(sizes) < n_cells:
        sizes.append(int(min(rng.zipf(2.2), 2000)))
    sizes[-1] -= sum(sizes) - n_cells
    per_cell, truth = [], []
    for k, size in enumerate(sizes):
        hv, hj = rng.choice(v_genes), rng.choice(j_genes)
        hjunc = junction(int(rng.integers(12, 23)))
        kappa = rng.random() < 0.6
        lvv = rng.choice(kv if kappa else lv)
        lj = rng.choice(["IGKJ1", "IGKJ2"] if kappa else ["IGLJ1", "IGLJ2"])
        ljunc = junction(int(rng.integers(9, 13)))
        second = size > 1 and rng.random() < 0.25
        ljunc2 = junction(11)
        for _ in range(size):
            h = list(hjunc)
            for _ in range(int(rng.integers(0, 3))):
                pos = int(rng.integers(1, len(h) - 1))
                h[pos] = rng.choice(list(AA))
            kind = rng.random()
            chains = []
            if kind < 0.92:
                chains.append(
                    {
                        "locus": "IGH",
                        "v_call": hv,
                        "j_call": hj,
                        "junction_aa": "".join(h),
                        "c_call": "IGHG1",
                        "umi_count": int(rng.integers(2, 40)),
                    }
                )
            if kind < 0.80 or kind >= 0.92:
                chains.append(
                    {
                        "locus": "IGK" if kappa else "IGL",
                        "v_call": lvv,
                        "j_call": lj,
                        "junction_aa": ljunc,
                        "umi_count": int(rng.integers(2, 40)),
                    }
                )
                if second and rng.random() < 0.5:
                    chains.append(
                        {
                            "locus": "IGL",
                            "v_call": "IGLV2-14",
                            "j_call": "IGLJ3",
                            "junction_aa": ljunc2,
                            "umi_count": 1,
                        }
                    )
            per_cell.append([{**c, "productive": True} for c in chains])
            truth.append(k)
    arr = ak.enforce_type(ak.from_iter(per_cell), _record_type(CORE_FIELDS))
    names = [f"S1_cell{i}" for i in range(len(per_cell))]
    obs = pd.DataFrame({"sample": "S1", "patient": "P1", "true_clone": truth}, index=names)
    return AnnData(obs=obs, obsm={"airr": arr})


def run_one(n_cells: int, threads: int) -> dict:
    """Build the data, then time chain indexing and clone calling; report peak RSS."""
    import warnings

    warnings.simplefilter("ignore")
    from cartrack.bcr import index_chains
    from cartrack.clones import define_clones

    t0 = time.perf_counter()
    airr = synthetic_airr(n_cells)
    build_s = time.perf_counter() - t0
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    index_chains(airr)
    t2 = time.perf_counter()
    define_clones(airr, n_jobs=threads)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    called = airr.obs.dropna(subset=["clone_id"])
    mixed = int((called.groupby("clone_id")["true_clone"].nunique() > 1).sum())
    split = int((called.groupby("true_clone")["clone_id"].nunique() > 1).sum())
    return {
        "n_true_clones": int(airr.obs["true_clone"].nunique()),
        "mixed": mixed,
        "split": split,
        "n_cells": n_cells,
        "n_clones": int(airr.obs["clone_id"].nunique()),
        "n_assigned": int(airr.obs["clone_id"].notna().sum()),
        "build_s": round(build_s, 1),
        "index_s": round(t2 - t1, 1),
        "clones_s": round(t3 - t2, 1),
        "rss_after_data_mb": round(rss_data),
        "peak_rss_mb": round(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results_clones.md"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.threads)))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--threads", str(args.threads)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            res = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            res = {"n_cells": n, "note": f"did not finish in {args.timeout} s"}
        except (json.JSONDecodeError, IndexError):
            res = {"n_cells": n, "note": "failed: " + done.stderr.strip().splitlines()[-1]}
        print(res, flush=True)
        rows.append(res)
    import scirpy

    lines = [
        "# Clone calling benchmark",
        "",
        f"`{' '.join(['benchmarks/bench_clones.py', *sys.argv[1:]])}` on {platform.node()} "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"scirpy {scirpy.__version__}, {args.threads} thread(s). One synthetic patient; "
        "defaults (aa, 85% identity, light-chain split, light-only cells excluded). Wall-clock "
        f"times on a machine shared with other jobs (load average {os.getloadavg()[0]:.1f} at "
        "the end): treat them as upper bounds.",
        "",
        "Accuracy against the simulated clones: *mixed* = called clones holding cells of two or",
        "more true clones, *split* = true clones spread over two or more called clones (cells",
        "with a clone only; light-only cells have none). Splits are the 85% rule at work: members",
        "carry up to two independent substitutions each, so two members of a small clone can",
        "differ at four positions (> 15% of a 12-22 aa junction) with no member in between.",
        "",
        "| BCR+ cells | true clones | called clones | cells with clone | mixed | split | "
        "index_chains + chain_qc (s) | define_clones (s) | peak RSS (MB) | "
        "RSS with data only (MB) | note |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_cells']:,} | {r.get('n_true_clones', '')} | {r.get('n_clones', '')} | "
            f"{r.get('n_assigned', '')} | {r.get('mixed', '')} | {r.get('split', '')} | "
            f"{r.get('index_s', '')} | {r.get('clones_s', '')} | {r.get('peak_rss_mb', '')} | "
            f"{r.get('rss_after_data_mb', '')} | {r.get('note', '')} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
