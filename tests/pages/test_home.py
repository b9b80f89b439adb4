"""The home page explains the app and shows the bundled model's card."""

from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT


def test_home_shows_model_card():
    at = AppTest.from_file(str(PROJECT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    assert "xrd-classify" in at.title[0].value
    headers = [h.value for h in at.header]
    assert "Bundled model" in headers
    facts = at.table[0].value
    assert "Architecture" in facts.index and "Training data" in facts.index
    metrics = at.dataframe[0].value
    assert list(metrics.columns[:2]) == ["model", "majority class"]
    assert "Space group top-1" in metrics.index
    assert metrics.loc["Space group macro-F1", "majority class"] == "—"
    assert "None" not in metrics.to_string() and "nan" not in metrics.to_string()


def test_app_navigation_lists_every_page():
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "xrd-classify"
