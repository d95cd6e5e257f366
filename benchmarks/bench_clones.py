"""Benchmark clone calling: today's per-patient code against the old cohort-wide scirpy code.

Run on demand, not a test. For P patients x N BCR+ cells (default 1, 10 and 50 x 20,000),
each in a fresh subprocess with a timeout, times :func:`cartrack.bcr.index_chains`, the
current :func:`cartrack.clones.define_clones` (nucleotide junctions, per-patient data-driven
threshold) and the code it replaced (commit 92a2c2f: scirpy ``ir_dist`` over the whole
cohort, amino-acid junctions at 85% identity), records peak resident memory and the pairwise
precision / recall of each against the simulated clones. Results go to
``benchmarks/results_clones.md``.

    .venv/bin/python benchmarks/bench_clones.py [--patients 1 10 50] [--cells 20000]

Synthetic repertoire (seeded, numpy-vectorised): per patient, clone sizes from a discrete
power law (about two thirds of the cells in singletons), heavy junctions of 13-22 codons over
40 IGHV x 6 IGHJ genes, members of a clone carry independent nucleotide substitutions at 2% per
position (light junctions 0.8%), 85% of cells paired, 10% heavy-only, 5% light-only.
"""

import argparse
import importlib.util
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))
OLD_COMMIT = "92a2c2f"


def _translate_all(junctions):
    from cartrack.airr_fields import translate

    table = {j: translate(j) for j in set(junctions)}
    return [table[j] for j in junctions]


def synthetic_airr(n_patients: int, n_cells: int, seed: int = 0):
    """A cohort's BCR AnnData in the layout of :func:`cartrack.bcr.read_bcr`."""
    import awkward as ak
    import numpy as np
    import pandas as pd
    from anndata import AnnData

    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    v_genes = np.array([f"IGHV{i // 8 + 1}-{i % 8 + 1}" for i in range(40)])
    j_genes = np.array([f"IGHJ{i}" for i in range(1, 7)])
    kv = np.array([f"IGKV{i}-{j}" for i in range(1, 5) for j in range(1, 6)])
    kj = np.array(["IGKJ1", "IGKJ2", "IGKJ4"])
    heavy_rows, light_rows, obs = [], [], []
    for p in range(n_patients):
        sizes = []
        while sum(sizes) < n_cells:
            sizes.append(int(min(rng.zipf(2.2), 1000)))
        sizes[-1] -= sum(sizes) - n_cells
        sizes = np.array(sizes)
        clone = np.repeat(np.arange(len(sizes)), sizes)
        n_codons = rng.integers(13, 23, size=len(sizes))
        for chain, rate, rows in (("H", 0.02, heavy_rows), ("L", 0.008, light_rows)):
            length = 3 * (n_codons if chain == "H" else np.full(len(sizes), 11))
            for L in np.unique(length):
                ks = np.nonzero(length == L)[0]
                founders = bases[rng.integers(0, 4, size=(len(ks), L))]
                founders[:, :3] = np.frombuffer(b"TGT", dtype=np.uint8)
                cells = np.nonzero(np.isin(clone, ks))[0]
                seqs = founders[np.searchsorted(ks, clone[cells])]
                mutate = rng.random(seqs.shape) < rate
                mutate[:, :3] = False
                seqs = np.where(mutate, bases[rng.integers(0, 4, size=seqs.shape)], seqs)
                junctions = [s.tobytes().decode() for s in seqs]
                rows.append(pd.DataFrame({"cell": cells + p * n_cells, "junction": junctions}))
        obs.append(pd.DataFrame({"patient": f"P{p}", "true_clone": [f"P{p}_{c}" for c in clone]}))
        # genes per clone
        obs[-1]["v"] = v_genes[rng.integers(0, 40, size=len(sizes))][clone]
        obs[-1]["j"] = j_genes[rng.integers(0, 6, size=len(sizes))][clone]
        obs[-1]["lv"] = kv[rng.integers(0, len(kv), size=len(sizes))][clone]
        obs[-1]["lj"] = kj[rng.integers(0, len(kj), size=len(sizes))][clone]
    obs = pd.concat(obs, ignore_index=True)
    heavy = pd.concat(heavy_rows).sort_values("cell")
    light = pd.concat(light_rows).sort_values("cell")
    kind = rng.random(len(obs))
    heavy = heavy.loc[kind[heavy["cell"]] < 0.95]
    light = light.loc[(kind[light["cell"]] < 0.85) | (kind[light["cell"]] >= 0.95)]
    chains = pd.concat(
        [
            heavy.assign(
                locus="IGH",
                v_call=obs["v"].to_numpy()[heavy["cell"]],
                j_call=obs["j"].to_numpy()[heavy["cell"]],
                c_call="IGHG1",
            ),
            light.assign(
                locus="IGK",
                v_call=obs["lv"].to_numpy()[light["cell"]],
                j_call=obs["lj"].to_numpy()[light["cell"]],
                c_call="IGKC",
            ),
        ]
    ).sort_values("cell", kind="stable")
    chains["junction_aa"] = _translate_all(chains["junction"].tolist())
    chains["v_call_raw"] = chains["v_call"] + "*01"
    chains["j_call_raw"] = chains["j_call"] + "*01"
    chains["productive"] = True
    chains["umi_count"] = rng.integers(2, 40, size=len(chains))
    cells = pd.unique(chains["cell"])
    counts = chains.groupby("cell", sort=False).size().loc[cells].to_numpy()
    fields = [
        "locus",
        "v_call",
        "j_call",
        "c_call",
        "v_call_raw",
        "j_call_raw",
        "junction",
        "junction_aa",
        "productive",
        "umi_count",
    ]
    from cartrack.airr_fields import CORE_FIELDS, record_type

    record = ak.zip({f: ak.Array(chains[f].tolist()) for f in fields}, depth_limit=1)
    missing = ak.Array([None] * len(chains))
    for f in sorted(set(CORE_FIELDS) - set(fields)):
        record = ak.with_field(record, missing, f)
    arr = ak.enforce_type(ak.unflatten(record, counts), record_type(CORE_FIELDS))
    obs = obs.iloc[cells].copy()
    obs.index = [f"S{c // n_cells}_cell{c}" for c in cells]
    obs["sample"] = obs["patient"] + "_S"
    return AnnData(obs=obs[["sample", "patient", "true_clone"]], obsm={"airr": arr})


def _old_define_clones():
    """The replaced clones.py, loaded from git (it needs the scirpy helpers of bcr.py)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:scripts/cartrack/clones.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path("/tmp") / f"cartrack_old_clones_{OLD_COMMIT}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_clones", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.define_clones


def pairwise(called, true) -> tuple[float, float]:
    import pandas as pd

    frame = pd.DataFrame({"c": called, "t": true}).dropna()

    def pairs(g):
        return float((g * (g - 1) / 2).sum())

    both = pairs(frame.groupby(["c", "t"]).size())
    return round(both / pairs(frame.groupby("c").size()), 4), round(
        both / pairs(frame.groupby("t").size()), 4
    )


def run_one(n_patients: int, n_cells: int, code: str) -> dict:
    """Build the data, index chains, call clones with `code` (new / old); peak RSS."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from cartrack.bcr import index_chains

    t0 = time.perf_counter()
    airr = synthetic_airr(n_patients, n_cells)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    index_chains(airr, productive_only=True)
    t2, c2 = time.perf_counter(), time.process_time()
    if code == "new":
        from cartrack.clones import define_clones

        thresholds = define_clones(airr)
        methods = ",".join(sorted(set(thresholds["method"])))
    else:
        _old_define_clones()(airr)
        methods = "aa 85%"
    t3, c3 = time.perf_counter(), time.process_time()
    precision, recall = pairwise(airr.obs["clone_id"], airr.obs["true_clone"])
    return {
        "code": code,
        "patients": n_patients,
        "cells": n_patients * n_cells,
        "build_s": round(build_s, 1),
        "index_s": round(t2 - t1, 1),
        "clones_s": round(t3 - t2, 1),
        "clones_cpu_s": round(c3 - c2, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "precision": precision,
        "recall": recall,
        "threshold": methods,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--cells", type=int, default=20_000, help="BCR+ cells per patient")
    parser.add_argument("--codes", nargs="+", default=["new", "old"])
    parser.add_argument("--timeout", type=int, default=300, help="seconds per run")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results_clones.md"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), int(args.one[1]), args.one[2])))
        return
    rows = []
    for n in args.patients:
        for code in args.codes:
            cmd = [sys.executable, __file__, "--one", str(n), str(args.cells), code]
            base = {"code": code, "patients": n, "cells": n * args.cells}
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                res = json.loads(done.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                res = base | {"note": f"did not finish in {args.timeout} s"}
            except (json.JSONDecodeError, IndexError):
                res = base | {"note": "failed: " + done.stderr.strip().splitlines()[-1][:120]}
            print(json.dumps(res), flush=True)
            rows.append(res)
    write_results(rows, args.out, " ".join(["benchmarks/bench_clones.py", *sys.argv[1:]]))


def write_results(rows: list[dict], out: str | Path, command: str) -> None:
    """The results table (markdown) of the runs in `rows`."""
    import os

    import scirpy

    lines = [
        "# Clone calling benchmark",
        "",
        f"`{command}` on "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"scirpy {scirpy.__version__}, one thread, load average {os.getloadavg()[0]:.1f} at the "
        "end (a machine shared with other jobs: times are upper bounds).",
        "",
        "*new*: per-patient V-J-length partitions, nucleotide junctions, single linkage at each "
        "patient's data-driven cut-off (`threshold` says how it was found). *old*: the code this "
        f"replaced (git {OLD_COMMIT}), scirpy `ir_dist` over the whole cohort, amino-acid "
        "junctions at 85% identity. Precision / recall: pairwise, against the simulated clones, "
        "over cells with a clone. `index_chains` (scirpy) is shared by both.",
        "",
        "| code | patients | BCR+ cells | index_chains (s) | define_clones (s) | "
        "define_clones CPU (s) | peak RSS (MB) | precision | recall | threshold | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['code']} | {r['patients']} | {r['cells']:,} | {r.get('index_s', '')} | "
            f"{r.get('clones_s', '')} | {r.get('clones_cpu_s', '')} | {r.get('peak_rss_mb', '')} | "
            f"{r.get('precision', '')} | "
            f"{r.get('recall', '')} | {r.get('threshold', '')} | {r.get('note', '')} |"
        )
    Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
