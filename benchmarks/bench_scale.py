"""Benchmark: the workflow against the one-process script on 36-sample cohorts of growing size.

For each size (cells before QC) it simulates a cohort with the project's simulator (the demo's
33 samples plus three marrow samples), then, one after the other on the same files, runs
`snakemake --cores N` (every output: tables, GSEA, figures) and the one-process script
(`../shared/bench/bare_pipeline.py`). For both it records the wall time, the peak resident
memory of the whole process tree (psutil, every 0.25 s) and the load averages before and
after; for the workflow also each job's time and peak memory (the jobs are the processes
running `.snakemake/scripts/tmp*.<script>.py`), the size of results/cohort.h5mu, and the time
and rules of a rerun after a figure-only config change; with --repeats N, N-1 further
workflow/script pairs (wall, CPU, peak of each). Each size's figures are kept in
benchmarks/results_scale.json; benchmarks/results_scale.md is rebuilt from all of them.
CI runs none of it. The script needs scikit-misc (scanpy's seurat_v3): pass its folder with
--script-pythonpath if it is not in the venv.

    .venv/bin/python benchmarks/bench_scale.py --sizes 25000 100000 [--workdir DIR]
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from cartrack.genesets import read_gmt  # noqa: E402
from cartrack.params import DemoParams  # noqa: E402
from cartrack.simulate import Cohort, write_cohort  # noqa: E402
from cartrack.simulate_tcr import simulate_tcr_files  # noqa: E402

RESULTS = REPO / "benchmarks" / "results_scale.json"
JOB = re.compile(r"\.snakemake/scripts/tmp[^/ ]*?\.(\w+)\.py")
#: marrow samples added to the demo's 33 so that the cohort has 36
EXTRA = [("P03_BM_baseline", "P03", -5, "BM", "baseline"), ("P03_BM_M6", "P03", 178, "BM", "M6"),
         ("P04_BM_M6", "P04", 181, "BM", "M6")]  # fmt: skip


def build_cohort(folder: Path, n_cells: int, seed: int = 0) -> Path:
    """Simulate a 36-sample cohort of about `n_cells` droplets; return its sample sheet."""
    sheet = pd.read_csv(REPO / "config/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    base = sheet[sheet["sample"] == "P04_BM_baseline"].iloc[0]
    extra = [base.copy() for _ in EXTRA]
    for row, (sample, patient, day, tissue, tp) in zip(extra, EXTRA, strict=True):
        row[["sample", "patient", "day", "tissue", "timepoint"]] = [
            sample,
            patient,
            day,
            tissue,
            tp,
        ]
        row["batch"] = sheet.loc[sheet["patient"] == patient, "batch"].iloc[0]
        for col in ("gex", "bcr", "tcr"):
            row[col] = row[col].replace("P04_BM_baseline", sample)
    sheet = pd.concat([sheet, pd.DataFrame(extra)], ignore_index=True)
    for col in ("gex", "bcr", "tcr"):
        sheet[col] = [
            str(folder / "data" / p.split("resources/demo/")[1]) if p else "" for p in sheet[col]
        ]
    sheet["day"] = sheet["day"].astype(int)
    genesets = REPO / "resources/genesets"
    names = ("IFN", "HALLMARK_INTERFERON_ALPHA_RESPONSE", "NFKB2_NONCANONICAL")
    sets = read_gmt([genesets / f"{name}.gmt" for name in names])
    kw = dict(ifn_genes=sets["IFN"] + sets["HALLMARK_INTERFERON_ALPHA_RESPONSE"],
              baff_genes=sets["NFKB2_NONCANONICAL"], seed=seed)  # fmt: skip
    probe = Cohort(sheet, **kw)
    factor = sum(probe.cell_factor(r.patient, r.day, r.tissue) for r in sheet.itertuples())
    per_sample = round(n_cells / factor)
    sheet_path = folder / "samples.tsv"
    if not sheet_path.exists():
        truth = folder / "data" / "truth"
        demo = DemoParams.from_config(cells_per_sample=per_sample)
        write_cohort(sheet, truth_dir=truth, demo=demo, **kw)
        cells = pd.read_csv(truth / "truth_cells.tsv", sep="\t", dtype={"barcode": str})
        simulate_tcr_files(sheet, cells, truth_dir=truth, seed=seed, post_min_day=28)
        sheet.to_csv(sheet_path, sep="\t", index=False)
    return sheet_path


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run `cmd`; wall time, peak tree RSS, load averages and each job process's figures."""
    load_before = os.getloadavg()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    root, peak, jobs = psutil.Process(proc.pid), 0, {}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        total, now = 0, time.monotonic() - start
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                rss = p.memory_info().rss
                total += rss
                if p.pid not in jobs:
                    m = JOB.search(" ".join(p.cmdline()))
                    jobs[p.pid] = {"script": m.group(1), "start": now, "rss": 0} if m else None
                if jobs[p.pid]:
                    cpu = sum(p.cpu_times()[:2])
                    jobs[p.pid].update(end=now, rss=max(jobs[p.pid]["rss"], rss), cpu=cpu)
            except psutil.Error:
                pass
        peak = max(peak, total)
        time.sleep(0.25)
    reader.join()
    return {
        "wall_s": round(time.monotonic() - start, 1),
        "peak_rss_mb": round(peak / 2**20),
        "rc": os.waitstatus_to_exitcode(status),
        # CPU seconds of the whole tree (less sensitive to other load than wall time)
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "jobs": [j for j in jobs.values() if j],
        "output": b"".join(out).decode(errors="replace"),
    }


def per_script(jobs: list[dict]) -> dict:
    """Job count, job-seconds, CPU seconds, longest job and max peak RSS, per job script."""
    out = defaultdict(lambda: {"n": 0, "job_s": 0.0, "cpu_s": 0.0, "max_s": 0.0, "max_rss_mb": 0})
    for j in jobs:
        s, d = out[j["script"]], j["end"] - j["start"]
        s["n"] += 1
        s["job_s"] = round(s["job_s"] + d, 1)
        s["cpu_s"] = round(s["cpu_s"] + j["cpu"], 1)
        s["max_s"] = round(max(s["max_s"], d), 1)
        s["max_rss_mb"] = max(s["max_rss_mb"], round(j["rss"] / 2**20))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["job_s"]))


def bench_size(n_cells: int, root: Path, args: argparse.Namespace) -> dict:
    """Simulate (once), run the workflow, a figure-only rerun, then the script."""
    cores, label = args.cores, args.label
    folder = root / f"cells_{n_cells}"
    folder.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    sheet = build_cohort(folder, n_cells)
    simulate_s = time.monotonic() - t
    cells_in = len(pd.read_csv(folder / "data/truth/truth_cells.tsv", sep="\t", usecols=[0]))
    wf = folder / "workflow"
    shutil.rmtree(wf, ignore_errors=True)
    (wf / "config").mkdir(parents=True)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["samples"] = str(sheet)
    (wf / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow/Snakefile"),
                 "--cores", str(cores)]  # fmt: skip
    res = {"label": label, "n_cells_in": cells_in, "n_samples": len(pd.read_csv(sheet, sep="\t")),
           "simulate_s": round(simulate_s, 1), "cores": cores, "slurm": slurm_state()}  # fmt: skip
    if res["slurm"].endswith("unreachable"):
        print(
            "warning: SLURM's client is installed but its controller does not answer: every "
            "snakemake start waits ~9 s (bash .ci/slurm.sh start, or remove the client)"
        )
    w = run(snakemake, wf)
    if w["rc"]:
        sys.exit(f"workflow failed in {wf}:\n{w['output'][-3000:]}")
    qc = pd.read_csv(wf / "results/tables/qc.tsv", sep="\t")
    res["n_cells_passed"] = int(qc["n_cells_passed"].sum())
    res["workflow"] = {k: v for k, v in w.items() if k not in ("jobs", "output")}
    res["workflow"]["per_script"] = per_script(w["jobs"])
    res["workflow"]["cohort_h5mu_mb"] = round((wf / "results/cohort.h5mu").stat().st_size / 1e6, 1)
    # a figure-only change: the font size of every figure
    config["figures"]["font_size"] += 1
    (wf / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    f = run(snakemake, wf)
    res["figure_change"] = {"wall_s": f["wall_s"], "rc": f["rc"],
                            "scripts": sorted({j["script"] for j in f["jobs"]}),
                            "load_before": f["load_before"]}  # fmt: skip
    env = dict(os.environ)
    if args.script_pythonpath:
        env["PYTHONPATH"] = args.script_pythonpath
    out = folder / "script" / "cohort.h5mu"
    script = [sys.executable, str(args.script), str(sheet), str(out), "--threads", str(cores)]
    s = run(script, folder, env)
    if s["rc"]:
        sys.exit(f"script failed:\n{s['output'][-3000:]}")
    stages = [line for line in s["output"].splitlines() if line.startswith("STAGES ")]
    res["script"] = {k: v for k, v in s.items() if k not in ("jobs", "output")}
    res["script"]["stages"] = json.loads(stages[-1][7:]) if stages else {}
    res["script"]["h5mu_mb"] = round(out.stat().st_size / 1e6, 1)
    # further alternating pairs: the script's own time varies by 10-30 % between runs here
    pairs = [(res["workflow"], res["script"])]
    config["figures"]["font_size"] -= 1
    (wf / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for _ in range(args.repeats - 1):
        for d in ("results", "logs", ".snakemake"):
            shutil.rmtree(wf / d, ignore_errors=True)
        w, s = run(snakemake, wf), run(script, folder, env)
        if w["rc"] or s["rc"]:
            sys.exit(f"repeat failed:\n{(w if w['rc'] else s)['output'][-3000:]}")
        pairs.append((w, s))
    keys = ("wall_s", "cpu_s", "peak_rss_mb")
    res["pairs"] = [{f"{who}_{k}": r[k] for who, r in zip(("workflow", "script"), pair, strict=True)
                     for k in keys} for pair in pairs]  # fmt: skip
    return res


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    ram = psutil.virtual_memory().total / 2**30
    return (f"{cpu}, {psutil.cpu_count()} cores, {ram:.0f} GB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")  # fmt: skip


def slurm_state() -> str:
    """Whether SLURM's client answers: with `scontrol` installed but no controller, every
    Snakemake start waits ~9 s (the SLURM executor plugin 2.8 runs `scontrol show config`
    when Snakemake imports it, also for local runs), which the workflow's times would include."""
    if not shutil.which("scontrol"):
        return "absent"
    try:
        subprocess.run(["scontrol", "ping"], capture_output=True, timeout=15, check=True)
        return "reachable"
    except (subprocess.SubprocessError, OSError):
        return "installed, controller unreachable"


def report(results: dict) -> str:
    rows = sorted(results.values(), key=lambda r: (r["n_cells_in"], r["label"]))
    lines = [
        "# Workflow against the one-process script, by cohort size",
        "",
        "Written by `benchmarks/bench_scale.py` (36 simulated samples per cohort; both runs one",
        "after the other on the same files; peak memory = resident memory of the whole process",
        "tree, sampled every 0.25 s; load = 1/5/15-min load averages before the run).",
        "",
        f"Machine: {machine()}. Shared with other jobs: compare runs by their load averages.",
        "SLURM client (`slurm` in results_scale.json): with `scontrol` installed and no",
        "controller answering, each Snakemake start waits ~9 s for it (SLURM executor plugin",
        "2.8, at import); these runs had it "
        + ", ".join(sorted({r.get("slurm", "not recorded") for r in results.values()}))
        + ".",
        "",
        "| run | cells in | kept | workflow wall (CPU) | workflow peak | load | script wall (CPU) "
        "| script peak | load | ratio | cohort.h5mu | figure-only rerun |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        w, s, f = r["workflow"], r["script"], r["figure_change"]
        lines.append(
            f"| {r['label'] or 'now'} | {r['n_cells_in']:,} | {r['n_cells_passed']:,} | "
            f"{w['wall_s']:.0f} s ({w['cpu_s']:.0f} s) | "
            f"{w['peak_rss_mb'] / 1024:.1f} GB | {'/'.join(map(str, w['load_before']))} | "
            f"{s['wall_s']:.0f} s ({s['cpu_s']:.0f} s) | {s['peak_rss_mb'] / 1024:.1f} GB | "
            f"{'/'.join(map(str, s['load_before']))} | {w['wall_s'] / s['wall_s']:.2f} | "
            f"{w['cohort_h5mu_mb']:.0f} MB | {f['wall_s']:.0f} s ({len(f['scripts'])} jobs) |"
        )
    repeated = [r for r in rows if len(r.get("pairs", [])) > 1]
    if repeated:
        lines += ["", "Alternating pairs (workflow, then script, same files), wall seconds; "
                  "ratio of the medians:", ""]  # fmt: skip
    for r in repeated:
        w, s = ([p[f"{who}_wall_s"] for p in r["pairs"]] for who in ("workflow", "script"))
        lines.append(
            f"- {r['n_cells_in']:,} cells ({r['label'] or 'now'}): workflow "
            f"{' / '.join(f'{x:.0f}' for x in w)} s, script {' / '.join(f'{x:.0f}' for x in s)} s; "
            f"{statistics.median(w) / statistics.median(s):.2f}"
        )
    for r in rows:
        lines += ["", f"## {r['n_cells_in']:,} cells ({r['label'] or 'now'}): workflow jobs", "",
                  "| job script | jobs | job-seconds | CPU-seconds | longest | peak RSS (max) |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for name, v in r["workflow"]["per_script"].items():
            lines.append(f"| {name} | {v['n']} | {v['job_s']:.0f} s | {v['cpu_s']:.0f} s | "
                         f"{v['max_s']:.0f} s | {v['max_rss_mb']} MB |")  # fmt: skip
        stages = {
            k: v for k, v in r["script"]["stages"].items() if k not in ("n_cells", "n_samples")
        }
        lines += ["", "Script stages (s): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())]
        lines += ["", "Figure-only rerun ran: " + ", ".join(r["figure_change"]["scripts"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 250_000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cartrack-scale"))
    parser.add_argument("--script-pythonpath", help="PYTHONPATH for the script (scikit-misc)")
    parser.add_argument(
        "--script", type=Path, default=REPO.parent / "shared/bench/bare_pipeline.py"
    )
    parser.add_argument("--label", default="", help="suffix of the result key (e.g. 'before')")
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternating workflow/script pairs per size"
    )
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for n in args.sizes:
        results[f"{n}{args.label}"] = bench_size(n, args.workdir, args)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        (REPO / "benchmarks/results_scale.md").write_text(report(results))


if __name__ == "__main__":
    main()
