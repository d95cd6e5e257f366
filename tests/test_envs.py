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
"""

from __future__ import annotations

import ast
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
RULES = REPO / "workflow" / "rules"
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


# ---- rules ---------------------------------------------------------------------------

RULE_START = re.compile(r"^([ \t]*)(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


def rule_blocks() -> list[tuple[Path, str, str]]:
    """(smk file, rule name, rule text) for every rule in workflow/rules/*.smk, also rules
    defined inside an `if` or `for` block."""
    blocks = []
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for m in RULE_START.finditer(text):
            indent = len(m.group(1).expandtabs())
            body = []
            for line in text[m.end() :].splitlines()[1:]:
                stripped = line.strip()
                if stripped and not stripped.startswith("#"):
                    if len(line) - len(line.lstrip()) <= indent:
                        break
                body.append(line)
            blocks.append((smk, m.group(2), "\n" + "\n".join(body)))
    return blocks


def directive(body: str, name: str) -> str | None:
    """The text of one directive of a rule (inline or on the following indented lines)."""
    m = re.search(rf"^(\s+){name}:(.*)$", body, re.M)
    if not m:
        return None
    indent = len(m.group(1))
    lines = [m.group(2)]
    for line in body[m.end() :].splitlines()[1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        lines.append(line)
    return "\n".join(lines).strip()


def string_literal(text: str | None) -> str | None:
    if not text:
        return None
    m = re.match(r"""^(?:f|r)?("|')(.*?)\1,?$""", text.strip(), re.S)
    return m.group(2) if m else None


def test_rules_exist():
    if not any(RULES.glob("*.smk")):
        pytest.skip("no workflow/rules/*.smk yet")
    assert rule_blocks(), "no rules found in workflow/rules/*.smk"


@pytest.mark.parametrize(
    "smk,rule,body", rule_blocks(), ids=[f"{p.name}:{r}" for p, r, _ in rule_blocks()]
)
def test_rule_conda_env_exists(smk, rule, body):
    conda = directive(body, "conda")
    if conda is None:
        if directive(body, "run") is not None or not (
            directive(body, "script") or directive(body, "shell")
        ):
            pytest.skip(f"{rule}: no conda: (run: block or no command)")
        pytest.fail(f"{smk.name}: rule {rule} runs a script/shell but has no conda:")
    path = string_literal(conda)
    assert path, f"{smk.name}: rule {rule}: conda: is not a plain string: {conda!r}"
    env = (smk.parent / path).resolve()
    assert env.is_file(), f"{smk.name}: rule {rule}: conda: {path} -> {env} does not exist"
    assert env.parent == ENVS, f"{smk.name}: rule {rule}: env {env} not under envs/"


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


def script_rules() -> list[tuple[Path, str, Path, Path]]:
    out = []
    for smk, rule, body in rule_blocks():
        script = string_literal(directive(body, "script"))
        conda = string_literal(directive(body, "conda"))
        if script and conda:
            out.append((smk, rule, (smk.parent / script).resolve(), (smk.parent / conda).resolve()))
    return out


@pytest.mark.parametrize(
    "smk,rule,script,env", script_rules(), ids=[f"{p.name}:{r}" for p, r, _, _ in script_rules()]
)
def test_rule_script_imports_covered_by_env(smk, rule, script, env):
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

COMMANDS = ("shell", "script", "run", "wrapper", "notebook", "cwl")


def local_rules() -> set[str]:
    names = set()
    for path in [*RULES.glob("*.smk"), REPO / "workflow" / "Snakefile"]:
        if path.is_file():
            text = path.read_text()
            for block in re.findall(r"^localrules:([^\n]*(?:\n[ \t]+[^\n]*)*)", text, re.M):
                names |= set(re.findall(r"\w+", block))
    for _, rule, body in rule_blocks():
        if re.search(r"^\s+localrule:\s*True", body, re.M):
            names.add(rule)
    return names


def job_rules() -> list[tuple[Path, str, str]]:
    """Rules that run a command and are not local: the ones that become SLURM jobs."""
    local = local_rules()
    return [
        (smk, rule, body)
        for smk, rule, body in rule_blocks()
        if rule not in local and any(directive(body, c) is not None for c in COMMANDS)
    ]


def resource_expr(resources: str, name: str) -> str | None:
    m = re.search(rf"(?:^|[\s,]){name}\s*=(.*?)(?=,\s*\n\s*\w+\s*=|\Z)", resources, re.S)
    return m.group(1).strip().rstrip(",") if m else None


def helper_source(name: str) -> str:
    """Source of a function `name` defined in the workflow's .smk files or Snakefile."""
    for path in [*RULES.glob("*.smk"), REPO / "workflow" / "Snakefile"]:
        if not path.is_file():
            continue
        text = path.read_text()
        m = re.search(rf"^def {name}\(.*?(?=^\S|\Z)", text, re.M | re.S)
        if m:
            return m.group(0)
    return ""


def mentions(expr: str, word: str) -> bool:
    """The expression, or a helper function it calls, uses `word`."""
    if re.search(rf"\b{word}\b", expr):
        return True
    return any(re.search(rf"\b{word}\b", helper_source(f)) for f in re.findall(r"(\w+)\s*\(", expr))


@pytest.mark.parametrize(
    "smk,rule,body", job_rules(), ids=[f"{p.name}:{r}" for p, r, _ in job_rules()]
)
def test_rule_declares_resources(smk, rule, body):
    where = f"{smk.name}: rule {rule}"
    assert directive(body, "threads") is not None, f"{where}: no threads:"
    resources = directive(body, "resources")
    assert resources, f"{where}: no resources:"
    mem = resource_expr(resources, "mem_mb")
    assert mem, f"{where}: resources: has no mem_mb"
    assert resource_expr(resources, "runtime"), f"{where}: resources: has no runtime"
    assert mentions(mem, "attempt"), f"{where}: mem_mb does not grow with attempt: {mem}"
    assert mentions(mem, "input"), f"{where}: mem_mb does not depend on input size: {mem}"
