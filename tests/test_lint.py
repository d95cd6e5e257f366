"""Static checks: snakemake --lint, snakefmt, ruff check and ruff format --check."""

import subprocess
import sys

from workflow_helpers import REPO


def test_snakefmt_check():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_snakemake_lint():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_ruff_check():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "scripts", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def test_ruff_format_check():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "scripts", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
