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


def _random_metrics(seed: int, n: int) -> dict:
    """Metrics of random predictions, in the shape ``benchmarks/accuracy.py`` writes them."""
    import numpy as np

    from core.evaluation import evaluate

    rng = np.random.default_rng(seed)
    return evaluate(rng.integers(1, 231, n), rng.dirichlet(np.ones(230), n)).to_dict()


def _home_with_results(tmp_path, monkeypatch, results: list[dict]) -> AppTest:
    """The home page run with ``results`` as the accuracy benchmark's entries."""
    import json

    from ui import cards

    path = tmp_path / "accuracy.json"
    path.write_text(json.dumps({"results": results}))
    monkeypatch.setattr(cards, "ACCURACY_RESULTS", path)
    at = AppTest.from_file(str(PROJECT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    return at


def test_home_quotes_the_confidence_record_of_each_real_set(tmp_path, monkeypatch):
    from ui import cards

    metrics = _random_metrics(0, 40)
    record = {"threshold": 0.25, "share": 0.3, "accuracy_above": 0.4, "accuracy_below": 0.1,
              "ece_space_group": 0.05}
    intervals = {"top1": {"estimate": metrics["top1"], "low": 0.011, "high": 0.123}}
    at = _home_with_results(tmp_path, monkeypatch, [
        {"model": "default", "set": "RRUFF test set", "metrics": metrics, "confidence": record,
         "intervals": intervals},
        {"model": "default", "set": "COD test set", "metrics": metrics}])
    assert {"RRUFF test set", "COD test set"} <= {h.value for h in at.subheader}
    assert [c.value for c in at.caption if "low confidence" in c.value] == [
        cards.confidence_summary(record)]
    # Only the set with intervals shows them: RRUFF is the second table, COD the third.
    rruff, cod = at.dataframe[1].value, at.dataframe[2].value
    assert list(rruff.loc["Space group top-1", list(cards.INTERVAL_COLUMNS)]) == ["1.1", "12.3"]
    assert "95 % interval low" not in cod.columns
    assert sum("95 % interval" in c.value for c in at.caption) == 1


def test_home_says_what_the_dif_peak_list_set_measures(tmp_path, monkeypatch):
    from ui import cards

    metrics = _random_metrics(1, 30)
    at = _home_with_results(tmp_path, monkeypatch, [
        {"model": "default", "set": "RRUFF rruff_dev (222 real patterns)", "metrics": metrics},
        {"model": "default", "set": "DIF peak lists of the rruff_dev minerals (222, no measurement)",
         "metrics": metrics}])
    notes = [c.value for c in at.caption if "without the measurement" in c.value]
    assert notes == [cards.set_note("DIF peak lists of the rruff_dev minerals (222, no measurement)")]
    assert cards.set_note("RRUFF rruff_dev (222 real patterns)") is None


def test_home_shows_what_each_measurement_effect_costs(tmp_path, monkeypatch):
    import json

    from tests.ui.test_cards import robustness_entry
    from ui import cards

    path = tmp_path / "robustness.json"
    path.write_text(json.dumps({"results": [
        robustness_entry("none (every effect off)", 0.30, 0.0),
        robustness_entry("impurity phase", 0.20, -0.10),
        robustness_entry("all (as in training)", 0.25, -0.05)]}))
    monkeypatch.setattr(cards, "ROBUSTNESS_RESULTS", path)
    at = AppTest.from_file(str(PROJECT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    assert "What makes a pattern hard" in [h.value for h in at.subheader]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["data"][0]["y"] == ["impurity phase", "all (as in training)"]
    caption = next(c.value for c in at.caption if "switched off" in c.value)
    assert "(30.0 % top-1, 70.0 % crystal system)" in caption and "(25.0 % and 65.0 %)" in caption

    monkeypatch.setattr(cards, "ROBUSTNESS_RESULTS", tmp_path / "missing.json")
    at = AppTest.from_file(str(PROJECT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    assert "What makes a pattern hard" not in [h.value for h in at.subheader]
