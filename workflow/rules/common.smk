"""The workflow's Python: config and sample sheet validation, paths, input functions."""

import os
import re
import sys
from dataclasses import fields
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO / "scripts"))
from cartrack.checks import (  # noqa: E402
    check_config,
    check_config_files,
    check_yaml_syntax,
)
from cartrack.design import InputError  # noqa: E402
from cartrack.params import (  # noqa: E402
    AnnotationParams,
    CarCallParams,
    ControlSetParams,
    GseaParams,
    IntegrationParams,
    PhaseParams,
    ReadParams,
    ReferenceParams,
    SignatureCellsParams,
    SignatureParams,
    UmapParams,
)
from cartrack.sheet import design_checks, load_sheet, require_column  # noqa: E402

DEFAULT_CONFIG = "config/config.yaml"
# Snakemake's own message for a YAML syntax error names neither file nor line: check first.
# (Files given with --configfile are read before this code runs; see README, "Errors".)
try:
    if Path(DEFAULT_CONFIG).is_file():
        check_yaml_syntax(DEFAULT_CONFIG)
except InputError as error:
    raise WorkflowError(str(error)) from None


configfile: DEFAULT_CONFIG


CONFIG_SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
try:
    check_config(
        config,
        yaml.safe_load(CONFIG_SCHEMA.read_text()),
        files=[*workflow.configfiles, *(workflow.overwrite_configfiles or [])],
    )
except InputError as error:
    raise WorkflowError(str(error)) from None
validate(config, schema="../schemas/config.schema.yaml")
try:
    check_config_files(config, repo=REPO)  # after validate: with the defaults filled in
except InputError as error:
    raise WorkflowError(str(error)) from None


def sort_keys(value):
    """Nested dicts with sorted keys: rules pass config sections as params, and Snakemake
    would rerun them when only the order of keys in a config file changed."""
    if isinstance(value, dict):
        return {key: sort_keys(value[key]) for key in sorted(value)}
    return value


config.update(sort_keys(config))

DEMO_DIR = Path("resources/demo").resolve()


def is_demo(path):
    """True for files of the embedded demo cohort, which rule demo_simulate writes."""
    return Path(path).resolve().is_relative_to(DEMO_DIR)


try:
    SHEET = load_sheet(config["samples"], exists=is_demo)
    require_column(
        SHEET, config["integration"]["batch_key"], config_key="integration.batch_key"
    )
except InputError as error:
    raise WorkflowError(str(error)) from None
validate(SHEET.reset_index(drop=True), schema="../schemas/samples.schema.yaml")
DESIGN_CHECKS = design_checks(
    SHEET,
    post_min_day=config["tracking"]["post_min_day"],
    visit_window_days=config["tracking"]["visit_window_days"],
)

SAMPLES = SHEET.index.tolist()


def qc_parts(samples, per_job):
    """Rule gex_qc's jobs: `per_job` consecutive samples of the sheet each, named after the
    sample when alone, else part1, part2, ... (zero-padded)."""
    if per_job == 1:
        return {s: [s] for s in samples}
    chunks = [samples[i : i + per_job] for i in range(0, len(samples), per_job)]
    width = len(str(len(chunks)))
    return {f"part{k:0{width}d}": chunk for k, chunk in enumerate(chunks, 1)}


QC_PARTS = qc_parts(SAMPLES, config["qc"]["samples_per_job"])


wildcard_constraints:
    sample="|".join(SAMPLES),
    part="|".join(re.escape(p) for p in QC_PARTS),


def local(path):
    """A sheet path as Snakemake should see it: relative for demo files (rule outputs)."""
    return os.path.relpath(path) if is_demo(path) else path


def resource(path):
    """A shipped resource: looked up in the working directory first, then in the repository."""
    path = Path(path)
    return str(path if path.is_absolute() or path.exists() else REPO / path)


def bcr_samples():
    """Samples with a V(D)J file."""
    return SHEET.index[SHEET["bcr"] != ""].tolist()


def tcr_samples():
    """Samples with a T-cell V(D)J file."""
    return SHEET.index[SHEET["tcr"] != ""].tolist()


def mem_mb(base, per_input_mb=0):
    """Memory request growing with input size and with the attempt number (retries)."""
    return lambda wildcards, input, attempt: int(
        (base + per_input_mb * input.size_mb) * (1 + 0.5 * (attempt - 1))
    )


def runtime(minutes):
    """Runtime request (minutes) growing with the attempt number."""
    return lambda wildcards, attempt: minutes * attempt


def config_for(params_class, section):
    """The keys of a config section that a parameters class of cartrack.params reads: a
    job's params, where the section also holds settings of other rules."""
    return {f.name: section[f.name] for f in fields(params_class)}


def plots_code(*modules):
    """Inputs of a figure job, the plotting code it draws with (scripts/cartrack/plots/):
    the style kit, the shared helpers and its own figure `modules`. Editing the style
    redraws every figure, editing one figure module only its figures (and nothing else).
    """
    library = REPO / "scripts" / "cartrack" / "plots"
    return [
        str(library / f"{name}.py")
        for name in ("__init__", "style", "layout", *modules)
    ]


def all_outputs():
    tables = [
        "design_checks",
        "qc",
        "cell_types",
        "b_cells",
        "clones",
        "clone_timeline",
        "elimination",
        "isotypes",
        "chain_qc",
        "signatures",
        "signature_changes",
        "gsea",
        "qc_by_cell_type",
        "car_t_ambient",
        "car_t",
        "car_t_clones",
    ]
    return [f"results/tables/{t}.tsv" for t in tables] + [
        "results/cohort.h5mu",
        *FIGURE_FILES,
    ]


def signature_gmts():
    """Gene-set files: the shipped ones (resolved in the repository) and the user's."""
    sig = config["signatures"]
    return [resource(p) for p in sig["gmt"]] + list(sig["extra_gmt"])
