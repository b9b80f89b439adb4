"""Number tables for display, with gaps marked "—".

Streamlit draws a missing cell as a grey "None" whatever a pandas Styler's ``na_rep`` says,
so a table with gaps (a baseline that has no simple value) is shown as text instead. The
pages right-align the text columns (:func:`right_aligned_columns`) so numbers still line up.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st

MISSING = "—"


def as_text(frame: pd.DataFrame, formats: Mapping[str, str]) -> pd.DataFrame:
    """A copy of ``frame`` with each column named in ``formats`` written with its format
    string (``"{:.1%}"``, ``"{:.1f}"``), and :data:`MISSING` where a value is missing or not
    finite. Other columns are left as they are."""
    text = frame.copy()
    for column, pattern in formats.items():
        text[column] = [pattern.format(v) if _present(v) else MISSING for v in frame[column]]
    return text


def _present(value) -> bool:
    if value is None or pd.isna(value):
        return False
    return not (isinstance(value, float | np.floating) and np.isinf(value))


def right_aligned_columns(columns) -> dict:
    """A ``column_config`` for ``st.dataframe`` that right-aligns the given text columns."""
    return {column: st.column_config.TextColumn(alignment="right") for column in columns}
