"""Memory model of the workflow's jobs, from `bench_scale.py`'s runs.

For every job script measured at two or more cohort sizes it fits peak RSS = a + b x cells
(least squares over the sizes; cells = cells kept by QC) and sets it against the `mem_mb`
the rule asks for at each size (Snakemake's dry run on the benchmark's own folders, which
`bench_scale.py` leaves in place), then extrapolates both to 2 million cells. Writes
benchmarks/results_memory.md. CI runs none of it.

    .venv/bin/python benchmarks/memory_model.py [--workdir /tmp/cartrack-scale]
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results_scale.json"
BLOCK = re.compile(r"^(?:local)?rule (\w+):", re.MULTILINE)
MEM = re.compile(r"resources: .*?\bmem_mb=(\d+)")
#: jobs named after their script differ from the rule name only for the V(D)J reads
SCRIPT_RULES = {"vdj_read": "bcr_read", "car_t_tables": "car_t_clones"}
TARGET = 2_000_000


def requested_mem_mb(workflow: Path) -> dict[str, int]:
    """Largest mem_mb each rule asks for in a dry run of every job of `workflow`."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "workflow/Snakefile"),
            "-n",
            "--forceall",
        ],  # fmt: skip
        cwd=workflow,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    starts = [(m.start(), m.group(1)) for m in BLOCK.finditer(out)] + [(len(out), "")]
    mem: dict[str, int] = {}
    for (start, rule), (end, _) in zip(starts, starts[1:], strict=False):
        found = MEM.search(out[start:end])
        if found:
            mem[rule] = max(mem.get(rule, 0), int(found.group(1)))
    return mem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cartrack-scale"))
    args = parser.parse_args()
    # runs without a label are keyed by their --sizes value, the name of their folder
    keyed = sorted(
        ((key, r) for key, r in json.loads(RESULTS.read_text()).items() if not r["label"]),
        key=lambda kr: kr[1]["n_cells_passed"],
    )
    runs = [r for _, r in keyed]
    sizes = [f"{r['n_cells_in']:,}" for r in runs]
    cells = np.array([r["n_cells_passed"] for r in runs], dtype=float)
    asked = [requested_mem_mb(args.workdir / f"cells_{key}" / "workflow") for key, _ in keyed]
    lines = [
        "# Memory of the workflow's jobs against cohort size",
        "",
        "Written by `benchmarks/memory_model.py` from `bench_scale.py`'s runs at "
        f"{' / '.join(sizes)} cells in ({', '.join(f'{c:,.0f}' for c in cells)} kept).",
        "Peak = the job's largest resident memory (MB); asked = the rule's `mem_mb` in a dry",
        "run of the same folder; fit = least squares of peak on kept cells; at 2M = the fit and",
        "the rule's request extrapolated to 2,000,000 kept cells (requests grow with inputs).",
        "",
        "| job script | peak MB per size | asked MB per size | fit: MB + KB/cell "
        "| at 2M: peak / asked (GB) |",
        "| --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    scripts = sorted({s for r in runs for s in r["workflow"]["per_script"]})
    for script in scripts:
        peaks = [r["workflow"]["per_script"].get(script, {}).get("max_rss_mb") for r in runs]
        rule = SCRIPT_RULES.get(script, script)
        req = [a.get(rule) for a in asked]
        if None in peaks or None in req:
            continue
        b, a = np.polyfit(cells, peaks, 1) if len(runs) > 1 else (0.0, peaks[0])
        rb, ra = np.polyfit(cells, req, 1) if len(runs) > 1 else (0.0, req[0])
        lines.append(
            f"| {script} | {' / '.join(map(str, peaks))} | {' / '.join(map(str, req))} | "
            f"{a:.0f} + {b * 1024:.1f} | {(a + b * TARGET) / 1024:.1f} / "
            f"{(ra + rb * TARGET) / 1024:.1f} |"
        )
    out = REPO / "benchmarks" / "results_memory.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
