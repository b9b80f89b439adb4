"""xrd-classify: routing only. Each page is a thin view over the `core` package."""

import streamlit as st

st.set_page_config(page_title="xrd-classify", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/dataset.py", title="Datasets", icon="📚"),
    st.Page("pages/training.py", title="Training", icon="🏋️"),
    st.Page("pages/compare.py", title="Compare models", icon="📊"),
    st.Page("pages/classify.py", title="Classify patterns", icon="🔎"),
]

st.navigation([page for page in PAGES]).run()
