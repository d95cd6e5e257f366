"""Benchmark: the whole workflow on the demo cohort, wall time and peak memory.

Runs `snakemake --cores N` with the shipped config in a fresh working folder (so the demo is
simulated from scratch, as on a fresh clone), samples the resident memory of Snakemake and
all its jobs every 0.2 s, and writes the figures to benchmarks/results_demo.md.

    .venv/bin/python benchmarks/bench_demo.py [--cores 2] [--keep DIR]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
FIGURE_RULES = [
    "figures_qc",
    "figures_umap",
    "figures_composition",
    "figures_clones",
    "figures_reconstitution",
    "figures_signatures",
    "figures_gsea",
    "figures_car_t",
    "figures_dist_nearest",
    "figures_diversity",
]


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(cmd: list[str], cwd: Path) -> tuple[float, int, int]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.2)
    return time.monotonic() - start, peak, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="cartrack-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
    ]
    wall, peak, rc = run([*snakemake, "--cores", str(args.cores)], workdir)
    if rc != 0:
        sys.exit(f"workflow failed (exit {rc}) in {workdir}")
    # a style change: every figure redrawn from the tables, no analysis rerun
    redraw = ["figures", "--forcerun", *FIGURE_RULES]
    fig_wall, fig_peak, rc = run([*snakemake, "--cores", str(args.cores), *redraw], workdir)
    n_cells = sum(
        int(line.split("\t")[5])
        for line in (workdir / "results/tables/qc.tsv").read_text().splitlines()[1:]
    )
    lines = [
        "# Demo cohort: wall time and peak memory",
        "",
        f"`benchmarks/bench_demo.py --cores {args.cores}`, fresh working folder (the demo is "
        f"simulated too), {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; {time.strftime('%Y-%m-%d')}.",
        "",
        "| run | wall time | peak memory (Snakemake + all jobs) |",
        "| --- | --- | --- |",
        f"| `snakemake --cores {args.cores}` (whole analysis, {n_cells} cells after QC) | "
        f"{wall / 60:.1f} min ({wall:.0f} s) | {peak / 2**30:.2f} GiB |",
    ]
    if rc == 0:
        lines.append(
            f"| every figure redrawn (`figures --forcerun figures_*`) | {fig_wall:.0f} s | "
            f"{fig_peak / 2**30:.2f} GiB |"
        )
    (REPO / "benchmarks" / "results_demo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
