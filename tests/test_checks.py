"""Config checks: keys outside the schema, non-finite numbers, YAML syntax; schema shape."""

import pytest
import yaml

from cartrack.checks import check_config, check_yaml_syntax
from cartrack.design import InputError


@pytest.fixture(scope="module")
def schema(repo):
    return yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())


def objects(node, path="config"):
    """Every object schema below `node`, with its path."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.get("properties", {}).items():
            yield from objects(child, f"{path}.{key}")


def is_typed_map(node) -> bool:
    """An object whose keys are user-chosen names (no fixed properties) but whose values
    are checked against a schema, such as `tracking.compartments`."""
    return isinstance(node.get("additionalProperties"), dict) and not node.get("properties")


def test_every_object_refuses_unknown_keys(schema):
    found = list(objects(schema))
    assert len(found) >= 10
    open_objects = [
        p
        for p, node in found
        if node.get("additionalProperties") is not False and not is_typed_map(node)
    ]
    assert open_objects == []


def test_shipped_config_passes(repo, schema):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    check_config(config, schema)


def test_every_problem_reported_at_once(repo, schema):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["qc"]["nmad"] = 3
    config["figures"]["dpi"] = float("nan")
    config["bcr"]["clone"]["treshold"] = 0.1
    with pytest.raises(InputError) as err:
        check_config(config, schema, files=["my.yaml"])
    message = str(err.value)
    assert message.startswith("config ('my.yaml') has 3 problem(s)")
    assert "'qc.nmad' is not known: did you mean 'qc.nmads'?" in message
    assert "'bcr.clone.treshold' is not known: did you mean 'bcr.clone.threshold'?" in message
    assert "'figures.dpi' is nan" in message


def test_nan_inside_a_list(schema):
    with pytest.raises(InputError, match=r"'signatures.gmt\[1\]' is nan"):
        check_config({"samples": "x", "signatures": {"gmt": ["a.gmt", float("nan")]}}, schema)


@pytest.mark.parametrize(
    ("text", "where"),
    [("a: 1\nb: [1, 2\n", "line 3, column 1"), ("a:\n\tb: 1\n", "line 2, column 1")],
)
def test_yaml_syntax_names_file_line_column(tmp_path, text, where):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"config file '.*my.yaml', {where}: not valid YAML"):
        check_yaml_syntax(path)


def test_valid_yaml_passes(tmp_path):
    (tmp_path / "ok.yaml").write_text("a: {b: 1}\n")
    check_yaml_syntax(tmp_path / "ok.yaml")


@pytest.mark.parametrize(
    ("scale", "with_counts_layer", "counts"),
    [(1, False, True), (0.5, False, False), (0.5, True, True)],
    ids=["raw X", "normalised X", "normalised X + counts layer"],
)
def test_h5ad_counts_told_from_a_sample_of_values(tmp_path, scale, with_counts_layer, counts):
    import anndata as ad
    import numpy as np
    import pandas as pd

    from cartrack.checks import gex_header

    raw = np.random.default_rng(0).poisson(2, size=(50, 30)).astype(np.float32)
    adata = ad.AnnData(
        X=raw * scale,
        obs=pd.DataFrame(index=[f"AAAC{i:04d}-1" for i in range(50)]),
        var=pd.DataFrame(index=[f"GENE{i}" for i in range(30)]),
    )
    if with_counts_layer:
        adata.layers["counts"] = raw
    adata.write_h5ad(tmp_path / "x.h5ad")
    header = gex_header(tmp_path / "x.h5ad")
    assert (len(header.barcodes), len(header.features), header.counts) == (50, 30, counts)


class _DuplicateKeys(yaml.SafeLoader):
    """A YAML loader that records keys given twice in one mapping (PyYAML keeps the last)."""

    found: list = []

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        self.found += [
            f"{k} (line {node.start_mark.line + 1})" for k in set(keys) if keys.count(k) > 1
        ]
        return super().construct_mapping(node, deep)


@pytest.mark.parametrize(
    "path",
    [
        "config/config.yaml",
        "workflow/schemas/config.schema.yaml",
        "workflow/schemas/samples.schema.yaml",
    ],
)
def test_no_key_given_twice(repo, path):
    """A section written twice silently loses the first one's keys."""
    _DuplicateKeys.found = []
    yaml.load((repo / path).read_text(), Loader=_DuplicateKeys)
    assert _DuplicateKeys.found == []
