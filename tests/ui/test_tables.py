"""Tables with gaps are shown as text, "—" in each gap (Streamlit would draw "None")."""

import numpy as np
import pandas as pd
import streamlit as st

from ui.tables import MISSING, as_text, right_aligned_columns


def test_as_text_formats_the_named_columns_and_marks_every_kind_of_gap():
    frame = pd.DataFrame({"rate": [0.1234, np.nan, None, np.inf], "n": [1, 2, 3, 4],
                          "label": ["a", "b", "c", "d"]})
    text = as_text(frame, {"rate": "{:.1%}"})
    assert list(text["rate"]) == ["12.3%", MISSING, MISSING, MISSING]
    assert list(text["n"]) == [1, 2, 3, 4] and list(text["label"]) == ["a", "b", "c", "d"]
    assert frame["rate"].dtype.kind == "f"  # the input is left alone


def test_as_text_keeps_an_object_column_with_none():
    frame = pd.DataFrame({"value": pd.Series([1.25, None, pd.NA], dtype=object)})
    assert list(as_text(frame, {"value": "{:.1f}"})["value"]) == ["1.2", MISSING, MISSING]


def test_right_aligned_columns_configures_each_column():
    config = right_aligned_columns(["a", "b"])
    assert set(config) == {"a", "b"}
    assert config["a"] == st.column_config.TextColumn(alignment="right")
