"""Faults: the real workflow on a one-patient tiny cohort, up to the QC tables.

- two runs from scratch write byte-identical tables;
- a run killed with SIGKILL in the middle of a job, then started again (after
  ``--unlock``, as the README says), writes byte-identical tables;
- a job that dies mid-write (file-size limit, as on a full disk) leaves no output that a
  rerun would take as finished;
- QC gives the same cells and tables whether a job QCs one sample or several.
"""

import os
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, SNAKEMAKE, make_tiny_project, run_snakemake

pytestmark = pytest.mark.workflow

TARGETS = ("results/tables/qc.tsv", "results/tables/design_checks.tsv")
SAMPLES = ("P01_PB_baseline", "P01_PB_D28", "P01_PB_M6")
CELLS = 80


def new_project(folder: Path) -> Path:
    """Three blood samples of one demo patient, 80 cells each."""
    workdir = make_tiny_project(folder, patients=("P01",), cells=CELLS)
    sheet = workdir / "config" / "samples.tsv"
    header, *rows = sheet.read_text().splitlines()
    sheet.write_text("\n".join([header, *(r for r in rows if r.split("\t")[0] in SAMPLES)]) + "\n")
    return workdir


def tables(workdir: Path) -> dict[str, bytes]:
    """Every table the targets write: results/tables and the QC jobs' tables."""
    files = [*(workdir / "results" / "tables").glob("*.tsv")]
    files += (workdir / "results" / "gex" / "qc").glob("*.tsv")
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(files)}


def qc_cells(workdir: Path) -> pd.DataFrame:
    """Every cell's QC metrics and flags, from all QC jobs' cell tables, in sample order."""
    files = sorted((workdir / "results" / "gex" / "qc").glob("*.cells.tsv"))
    cells = pd.concat([pd.read_csv(p, sep="\t") for p in files])
    return cells.sort_values(["sample", "cell"]).reset_index(drop=True)


def command(workdir: Path, *args: str) -> list[str]:
    return [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = new_project(tmp_path_factory.mktemp("reference"))
    run_snakemake(workdir, "--cores", "2", *TARGETS)
    return workdir


def test_two_runs_from_scratch_are_identical(reference, tmp_path):
    again = new_project(tmp_path)
    run_snakemake(again, "--cores", "2", *TARGETS)
    expected = tables(reference)
    assert tables(again) == expected
    assert qc_cells(again)["sample"].unique().tolist() == sorted(SAMPLES)


def test_qc_does_not_depend_on_samples_per_job(reference, tmp_path):
    """One sample a job (qc.samples_per_job: 1) against the default's one job for all three:
    the same qc.tsv and the same flags and metrics for every cell."""
    workdir = new_project(tmp_path)
    config_path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    assert config["qc"]["samples_per_job"] > 1  # the reference ran several samples a job
    config["qc"]["samples_per_job"] = 1
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    run_snakemake(workdir, "--cores", "2", *TARGETS)
    qc_dir = workdir / "results" / "gex" / "qc"
    assert sorted(p.name for p in qc_dir.glob("*.summary.tsv")) == sorted(
        f"{s}.summary.tsv" for s in SAMPLES
    )
    assert len(list((reference / "results" / "gex" / "qc").glob("*.summary.tsv"))) == 1
    qc = "results/tables/qc.tsv"
    assert (workdir / qc).read_bytes() == (reference / qc).read_bytes()
    pd.testing.assert_frame_equal(qc_cells(workdir), qc_cells(reference))


def test_sigkill_mid_job_then_rerun_is_identical(reference, tmp_path):
    workdir = new_project(tmp_path)
    run_snakemake(workdir, "--cores", "1", "results/tables/design_checks.tsv")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        command(workdir, "--cores", "1", *TARGETS),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    qc_logs = workdir / "logs" / "gex_qc"
    deadline = time.time() + 300
    while time.time() < deadline and not (qc_logs.is_dir() and any(qc_logs.iterdir())):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its running job, mid-job
    proc.wait()
    assert not (workdir / "results" / "tables" / "qc.tsv").exists()

    # the README's restart instructions: the killed Snakemake left its lock, so the same
    # command stops and says so; once with --unlock, then the same command again
    locked = run_snakemake(workdir, "--cores", "1", *TARGETS, check=False)
    assert locked.returncode != 0
    assert "Directory cannot be locked" in locked.stdout + locked.stderr
    run_snakemake(workdir, "--unlock", *TARGETS)
    run_snakemake(workdir, "--cores", "1", *TARGETS)
    assert tables(workdir) == tables(reference)


def test_job_dying_mid_write_leaves_no_finished_output(reference, tmp_path):
    workdir = new_project(tmp_path)
    run_snakemake(workdir, "--cores", "1", "results/tables/design_checks.tsv")
    limit = 200_000  # bytes: the QC tables fit, a sample's .h5ad does not (as on a full disk)

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONHASHSEED": "0"}
    failed = subprocess.run(
        command(workdir, "--cores", "1", *TARGETS),
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=small_disk,
        timeout=900,
    )
    assert failed.returncode != 0
    # Python ignores SIGXFSZ, so the write fails with EFBIG as it would with ENOSPC
    assert "File too large" in failed.stderr, failed.stderr[-3000:]
    assert "Removing output files of failed job gex_qc" in failed.stderr
    h5ads = list((workdir / "results" / "gex" / "qc").glob("*.h5ad"))
    assert not h5ads, f"partial outputs left behind: {h5ads}"
    assert not list((workdir / "results" / "gex" / "qc").glob("*.summary.tsv"))
    dry = run_snakemake(workdir, "-n", *TARGETS)
    assert "gex_qc" in dry.stdout
    run_snakemake(workdir, "--cores", "1", *TARGETS)
    assert tables(workdir) == tables(reference)


def test_a_changed_matrix_reruns_its_sample_qc(tmp_path):
    """A sample's matrix replaced after a run: its QC is redone, never left stale."""
    import h5py

    workdir = new_project(tmp_path)
    run_snakemake(workdir, "--cores", "2", *TARGETS)
    sheet = (workdir / "config" / "samples.tsv").read_text().splitlines()
    column = sheet[0].split("\t").index("gex")
    row = next(r.split("\t") for r in sheet[1:] if r.startswith(SAMPLES[1]))
    with h5py.File(workdir / "config" / row[column], "a") as f:
        f.attrs["replaced"] = "new content, same cells"
    dry = run_snakemake(workdir, "-n", *TARGETS).stdout
    jobs = re.split(r"\n(?=(?:local)?rule \w+:)", dry)
    qc_jobs = [job for job in jobs if re.match(r"(?:local)?rule gex_qc:", job)]
    assert any(SAMPLES[1] in job for job in qc_jobs), dry
