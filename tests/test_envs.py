"""The conda environments in envs/*.yaml agree with envs/requirements.txt and with the rules.

Conda channels are not reachable here, so the environments cannot be solved or used
(`--sdm conda` is untested); these checks keep them from drifting instead:
- every package is pinned to exactly the version that requirements.txt pins (conda names
  mapped to PyPI names where they differ), on conda-forge and bioconda only;
- every rule's `conda:` points at an existing file in envs/;
- every third-party module that a rule's script imports (following `cartrack` imports)
  comes with its environment, directly or as a dependency.
It also checks what the SLURM profile relies on (issue 6): every rule that runs a job
declares threads, a runtime and a mem_mb that grows with the input size and the attempt.
Rules are read through Snakemake's own parser (its API), not with regular expressions.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
SCRIPTS = REPO / "scripts"
TOPICS = ["gex", "bcr", "signatures", "figures"]

# conda-forge/bioconda name -> PyPI name, where they differ (beyond case and -_.).
CONDA_TO_PYPI = {
    "python-igraph": "igraph",
    "matplotlib-base": "matplotlib",
    "pytables": "tables",
    "pytorch": "torch",
    "python-levenshtein": "python-Levenshtein",
    "levenshtein": "Levenshtein",
    "font-ttf-dejavu-sans-mono": None,  # not a Python package
}
# Imports that are not distributions of their own (the workflow runtime, our library).
NOT_PACKAGES = {"snakemake", "cartrack", "__future__"}


def normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pypi_name(conda_name: str) -> str | None:
    return CONDA_TO_PYPI.get(conda_name, conda_name)


def read_requirements() -> dict[str, str]:
    pins = {}
    for line in (ENVS / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+).*", line)
        assert m, f"requirements.txt: not an exact pin: {line!r}"
        pins[normalise(m.group(1))] = m.group(3)
    return pins


SPEC = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(==|=)?\s*([^\s=]+)?(?:[\s=](\S+))?$")


def parse_conda_dep(dep: str) -> tuple[str, str | None]:
    """'scanpy =1.11.5' / 'scanpy=1.11.5' / 'scanpy==1.11.5' / 'scanpy' -> (name, version)."""
    dep = dep.split("::", 1)[-1].strip()
    m = SPEC.match(dep)
    assert m, f"cannot parse conda dependency {dep!r}"
    return m.group(1), m.group(3)


def env_files() -> list[Path]:
    return sorted(ENVS.glob("*.yaml"))


def load_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), f"{path.name}: not a mapping"
    return env


def conda_deps(env: dict) -> list[tuple[str, str | None]]:
    return [parse_conda_dep(d) for d in env.get("dependencies", []) if isinstance(d, str)]


def test_topic_envs_exist():
    missing = [t for t in TOPICS if not (ENVS / f"{t}.yaml").is_file()]
    assert not missing, f"missing envs/<topic>.yaml: {missing}"


@pytest.mark.parametrize("path", env_files(), ids=lambda p: p.name)
def test_env_channels_and_pins(path):
    env = load_env(path)
    channels = env.get("channels", [])
    assert channels[:2] == ["conda-forge", "bioconda"], (
        f"{path.name}: channels must be conda-forge then bioconda, got {channels}"
    )
    assert not {"defaults", "anaconda", "main"} & set(channels), (
        f"{path.name}: the Anaconda defaults channel is not allowed: {channels}"
    )
    deps = conda_deps(env)
    assert deps, f"{path.name}: no dependencies"
    names = [name for name, _ in deps]
    assert len(names) == len(set(names)), f"{path.name}: duplicate packages"
    versions = dict(deps)
    assert versions.get("python") == "3.11", f"{path.name}: needs python =3.11"
    unpinned = [name for name, version in deps if not version]
    assert not unpinned, f"{path.name}: unpinned packages {unpinned}"
    pip_sections = [d for d in env.get("dependencies", []) if isinstance(d, dict)]
    assert not pip_sections, f"{path.name}: no pip: section, conda packages only"


@pytest.mark.parametrize("path", env_files(), ids=lambda p: p.name)
def test_env_versions_match_requirements(path):
    pins = read_requirements()
    problems = []
    for name, version in conda_deps(load_env(path)):
        if name == "python":
            continue
        pypi = pypi_name(name)
        if pypi is None:
            continue
        pinned = pins.get(normalise(pypi))
        if pinned is None:
            problems.append(f"{name}: not in requirements.txt (as {pypi})")
        elif pinned != version:
            problems.append(f"{name}={version}, requirements.txt has {pypi}=={pinned}")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_python_version_matches_venv():
    """python =3.11 in the envs is the interpreter the pip requirements are tested on."""
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"


# ---- rules, as Snakemake itself parses them ------------------------------------------


@functools.cache
def workflow():
    """The workflow as Snakemake parses it (its API; the rule objects come from the
    internal `Workflow`, the way `snakemake --lint` reads them)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ResourceSettings

    with SnakemakeApi() as api:
        wf_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            snakefile=REPO / "workflow" / "Snakefile",
            workdir=REPO,
        )
        wf = wf_api._get_workflow()
        wf.include(wf_api.snakefile, overwrite_default_target=True)
        return wf


def rules() -> list:
    return sorted(workflow().rules, key=lambda r: r.name)


def rule_path(rule, relative: str | None) -> Path | None:
    """A `script:` / `conda:` path of a rule, resolved against the file that defines it."""
    return (Path(rule.snakefile).parent / relative).resolve() if relative else None


def test_rules_exist():
    assert rules(), "Snakemake found no rules"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.name)
def test_rule_conda_env_exists(rule):
    info = rule.ruleinfo
    if info.conda_env is None:
        assert not (info.script or info.shellcmd or info.wrapper), (
            f"rule {rule.name} runs a script/shell but has no conda:"
        )
        pytest.skip(f"{rule.name}: no conda: (run: block or no command)")
    assert isinstance(info.conda_env, str), f"rule {rule.name}: conda: is not a plain path"
    env = rule_path(rule, info.conda_env)
    assert env.is_file(), f"rule {rule.name}: conda: {info.conda_env} -> {env} does not exist"
    assert env.parent == ENVS, f"rule {rule.name}: env {env} not under envs/"


# ---- imports of the rule scripts are covered by their env ----------------------------


def _imports(tree: ast.AST, *, in_functions: bool):
    """Import nodes of a module; those inside functions only when `in_functions`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if in_functions or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                todo.append(child)


def module_imports(path: Path, seen: set[Path], *, library: bool = False) -> set[str]:
    """Top-level modules imported by a rule script, following imports of our `cartrack`
    package. In the script every import counts; in `cartrack` modules only those run at
    import time (an import inside a function is that function's optional dependency)."""
    if path in seen or not path.is_file():
        return set()
    seen.add(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in _imports(tree, in_functions=not library):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif node.level == 1 and library:  # relative import inside cartrack
            base = f"cartrack.{node.module}" if node.module else "cartrack"
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            names = []
        for name in names:
            top, *parts = name.split(".")
            if top == "cartrack":
                pkg = SCRIPTS / "cartrack"
                found |= module_imports(pkg / "__init__.py", seen, library=True)
                if parts:
                    target = pkg.joinpath(*parts)
                    found |= module_imports(target.with_suffix(".py"), seen, library=True)
                    found |= module_imports(target / "__init__.py", seen, library=True)
            found.add(top)
    return found


def requirement_closure(dists: set[str]) -> set[str]:
    """The distributions and everything they require (without extras), installed here."""
    todo, done = list(dists), set()
    while todo:
        name = normalise(todo.pop())
        if name in done:
            continue
        done.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req or "extra==" in req:
                continue
            m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
            if m:
                todo.append(m.group(0))
    return done


def script_rules() -> list[tuple[str, Path, Path]]:
    return [
        (r.name, rule_path(r, r.ruleinfo.script), rule_path(r, r.ruleinfo.conda_env))
        for r in rules()
        if r.ruleinfo.script and isinstance(r.ruleinfo.conda_env, str)
    ]


@pytest.mark.parametrize("rule,script,env", script_rules(), ids=[r for r, _, _ in script_rules()])
def test_rule_script_imports_covered_by_env(rule, script, env):
    if not script.is_file() or not env.is_file():
        pytest.skip(f"{rule}: script or env missing (checked elsewhere)")
    modules = module_imports(script, set()) - set(sys.stdlib_module_names) - NOT_PACKAGES
    provided = requirement_closure(
        {pypi_name(n) for n, _ in conda_deps(load_env(env)) if pypi_name(n) and n != "python"}
    )
    dists_of = metadata.packages_distributions()
    missing = []
    for module in sorted(modules):
        dists = {normalise(d) for d in dists_of.get(module, [])}
        if not dists:
            missing.append(f"{module} (not installed in the venv either)")
        elif not dists & provided:
            missing.append(f"{module} (from {', '.join(sorted(dists))})")
    assert not missing, (
        f"rule {rule} ({os.path.relpath(script, REPO)}) imports modules that "
        f"{os.path.relpath(env, REPO)} does not provide: {missing}"
    )


# ---- every job declares threads, mem_mb (input size x attempt) and runtime ------------


# Rules whose memory does not follow their input files, and why.
NOT_INPUT_SIZED = {
    "demo_simulate": "memory follows demo.cells_per_sample; its inputs are gene-set files",
}


class _Input:
    """Stand-in for a job's input files, as far as the resource functions look at them."""

    def __init__(self, size_mb: float):
        self.size_mb = size_mb
        self.size = size_mb * 1024 * 1024


def job_rules() -> list:
    """Rules that run a command and are not local: the ones that become SLURM jobs."""
    local = workflow()._localrules
    return [
        r
        for r in rules()
        if r.name not in local
        and not r.ruleinfo.localrule
        and not r.norun
        and (r.ruleinfo.script or r.ruleinfo.shellcmd or r.ruleinfo.func or r.ruleinfo.wrapper)
    ]


def evaluate(value, *, input_mb: float, attempt: int):
    """A resource value as Snakemake would compute it for a job (callables get the named
    arguments they ask for)."""
    if not callable(value):
        return value
    given = {"wildcards": {}, "wc": {}, "input": _Input(input_mb), "attempt": attempt}
    given["threads"] = 1
    return value(*[given[name] for name in inspect.signature(value).parameters])


@pytest.mark.parametrize("rule", job_rules(), ids=lambda r: r.name)
def test_rule_declares_resources(rule):
    info = rule.ruleinfo
    assert info.threads is not None, f"rule {rule.name}: no threads:"
    resources = info.resources[1] if info.resources else {}
    assert "mem_mb" in resources, f"rule {rule.name}: resources: has no mem_mb"
    assert "runtime" in resources, f"rule {rule.name}: resources: has no runtime"
    mem = resources["mem_mb"]
    small, big = (evaluate(mem, input_mb=mb, attempt=1) for mb in (1, 10_000))
    retry = evaluate(mem, input_mb=1, attempt=2)
    if rule.name not in NOT_INPUT_SIZED:
        assert big > small, f"rule {rule.name}: mem_mb does not grow with the input size"
    assert retry > small, f"rule {rule.name}: mem_mb does not grow with the attempt"
