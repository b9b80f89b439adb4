"""xrd-classify: routing only. Each page is a thin view over the `core` package."""

import streamlit as st

st.set_page_config(page_title="xrd-classify", page_icon=":material/biotech:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Datasets", icon=":material/dataset:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/compare_arrows:"),
    st.Page("pages/classify.py", title="Classify patterns", icon=":material/search:"),
]

st.navigation(PAGES).run()
