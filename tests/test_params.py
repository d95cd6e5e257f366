"""cartrack.params: typed config sections whose defaults come from the config schema only."""

import dataclasses

import pytest
import yaml
from workflow_helpers import REPO

from cartrack import params
from cartrack.params import ConfigParams, TrackingParams

CLASSES = [
    c
    for c in vars(params).values()
    if isinstance(c, type) and issubclass(c, ConfigParams) and c is not ConfigParams
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_is_a_schema_key_with_a_default(cls):
    """No default is written in Python: the schema has one for every field, and a field
    that the schema does not know would be a typo."""
    defaults = params.schema_defaults(cls.SECTION)
    names = [f.name for f in dataclasses.fields(cls)]
    assert set(names) <= set(defaults), set(names) - set(defaults)
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(cls))
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_from_config_takes_the_section_and_fills_gaps_from_the_schema():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    full = TrackingParams.from_config(config["tracking"])
    assert full.post_min_day == config["tracking"]["post_min_day"]
    assert full.compartments["naive"] == tuple(config["tracking"]["compartments"]["naive"])
    part = TrackingParams.from_config({"alpha": 0.01}, post_min_day=14)
    assert (part.alpha, part.post_min_day) == (0.01, 14)
    assert part.dp_min_fold == params.schema_defaults("tracking")["dp_min_fold"]
    # keys of other rules in the same section are ignored
    assert params.ReadParams.from_config({"cells_only": False, "clone": {}}).cells_only is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.alpha = 0.5


def test_a_field_without_value_or_default_is_an_error(monkeypatch):
    monkeypatch.setattr(params, "schema_defaults", lambda section: {})
    with pytest.raises(TypeError, match="cells_only"):
        params.ReadParams.from_config({"productive_only": True})
