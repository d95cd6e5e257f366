"""Helpers for tests that run the real Snakemake workflow on a tiny simulated cohort."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The tiny cohort: the four demo patients, one per scenario (reference, persistent,
# same-repertoire null, non-recovering; see cartrack.simulate), blood at six visits,
# marrow for three; 400 cells per sample.
TINY_PATIENTS = ("P01", "P02", "P03", "P04")
TINY_CELLS = 400


def make_tiny_project(
    tmp_path: Path, *, patients=TINY_PATIENTS, cells=TINY_CELLS, **overrides
) -> Path:
    """Write config/config.yaml and config/samples.tsv for a tiny demo cohort in tmp_path."""
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    sheet = pd.read_csv(REPO / "config" / "samples.tsv", sep="\t", dtype=str)
    sheet[sheet["patient"].isin(patients)].to_csv(cfg_dir / "samples.tsv", sep="\t", index=False)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["samples"] = "config/samples.tsv"
    config["demo"]["cells_per_sample"] = cells
    # The simulator injects doublets at demo.doublet_rate whatever the sample size; tell QC
    # that rate, as a user tells it their loading's (qc.expected_doublet_rate), instead of
    # the 10x loading formula, which for 400-cell samples expects ten times fewer.
    config["qc"]["expected_doublet_rate"] = config["demo"]["doublet_rate"]
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    (cfg_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 1800, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in `workdir`; on failure show its output."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-15000:]}"
        )
    return proc


def read_table(workdir: Path, name: str) -> pd.DataFrame:
    """A results table, with empty fields as NaN."""
    return pd.read_csv(workdir / "results" / "tables" / f"{name}.tsv", sep="\t")
