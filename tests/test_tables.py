"""The contract's table format."""

import numpy as np
import pandas as pd

from cartrack.tables import write_tsv


def test_write_tsv_format(tmp_path):
    df = pd.DataFrame(
        {"a": ["x", "y"], "flag": [True, False], "v": [1.5, np.nan], "mixed": [True, "z"]}
    )
    write_tsv(df, tmp_path / "t.tsv")
    lines = (tmp_path / "t.tsv").read_text().splitlines()
    assert lines == ["a\tflag\tv\tmixed", "x\ttrue\t1.5\ttrue", "y\tfalse\t\tz"]
