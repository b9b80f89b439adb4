"""Every page runs inside app.py's navigation, even when it is the first page opened.

Streamlit treats a ``pages/`` folder beside the main script as its older folder-based page
mode until ``st.navigation`` has run once in the server process. A deep link such as
``/classify`` as the very first visit would then run the page on its own, without the app's
navigation and layout. :func:`ensure_app_navigation` notices that mode, leaves it, and reruns,
so that app.py runs and routes the same URL to the same page.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_app_navigation() -> None:
    """Call first thing in every page."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
