"""Streamlit-side helpers shared by the pages: cached loaders and plotly figure functions.

Figure functions take data and return a plotly figure; they never call Streamlit, so they
are tested on their own.
"""
