"""The app's own navigation (app.py's st.navigation) on a freshly started server."""

from __future__ import annotations

from tests.e2e.conftest import VIEWPORT, open_app_page, running_app, screenshot

TITLES = ["Home", "Datasets", "Training", "Compare models", "Classify patterns"]


def test_deep_link_as_first_visit_uses_the_app_navigation(browser, isolated_store, tmp_path):
    with running_app(isolated_store, tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport=dict(VIEWPORT), base_url=url)
        try:
            page = context.new_page()
            page.set_default_timeout(90_000)
            open_app_page(page, "/classify", "Classify patterns")
            links = page.locator('[data-testid="stSidebarNavLink"]')
            links.first.wait_for()
            screenshot(page, "classify_deep_link_first")
            names = [text.split("\n")[-1].strip() for text in links.all_inner_texts()]
            assert names == TITLES, f"sidebar shows {names}"
        finally:
            context.close()
