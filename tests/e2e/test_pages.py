"""Each page of the running app, in a real browser: it loads, draws its figures and tables,
and handles good and broken uploads."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import (EXAMPLE, assert_no_exception, check_top_five, open_app_page,
                                plot_traces, screenshot, upload, wait_for_plots)

expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

PAGES = {"Home": "/", "Datasets": "/dataset", "Training": "/training",
         "Compare models": "/compare", "Classify patterns": "/classify"}


def test_home_shows_title_and_bundled_model_card(page):
    open_app_page(page, "/", "xrd-classify")
    expect(page.get_by_role("heading", name="Bundled model")).to_be_visible()
    card = page.locator('[data-testid="stTable"]')
    expect(card).to_be_visible()
    for fact in ("Architecture", "Input", "Training data", "Status"):
        expect(card).to_contain_text(fact)
    links = page.locator('[data-testid="stSidebarNavLink"]')
    expect(links).to_have_count(len(PAGES))
    for title, path in PAGES.items():
        link = links.filter(has_text=title)
        expect(link).to_have_attribute("href", re.compile(re.escape(path) + "$"))
    assert_no_exception(page)
    screenshot(page, "home")


def test_dataset_page_draws_its_figures(page):
    open_app_page(page, "/dataset", "Datasets")
    expect(page.locator('[data-testid="stMetric"]').first).to_contain_text("Patterns")
    wait_for_plots(page, '[data-testid="stPlotlyChart"]', 6)
    figures = plot_traces(page)
    assert len(figures) >= 6, figures
    # The overview figures (space groups, systems, peaks, lattice, volume, elements) hold data.
    for traces in figures[:6]:
        assert traces and max(trace["points"] for trace in traces) > 0, figures
    assert_no_exception(page)
    screenshot(page, "dataset")


def test_classify_rruff_file_shows_top_five(page):
    open_app_page(page, "/classify", "Classify patterns")
    upload(page, [EXAMPLE])
    summary = page.locator('[data-testid="stMarkdownContainer"] p').filter(
        has_text=re.compile(r"^1 of 1 file\(s\) classified with model"))
    expect(summary).to_be_visible()
    check_top_five(page)
    expect(page.get_by_text(re.compile(r"^Read as rruff_xy"))).to_be_visible()
    assert not page.locator('[data-testid="stAlert"]').filter(
        has_text=EXAMPLE.name).count(), "the good file was reported as an error"
    expect(page.get_by_text("Which peaks decided it?")).to_be_visible()
    wait_for_plots(page, ".st-key-detail_influence")
    traces = plot_traces(page, ".st-key-detail_influence")
    bars = [t for t in traces[0] if t["type"] == "bar"] if traces else []
    assert bars and bars[0]["points"] > 0, traces  # one bar per peak of the model input
    assert_no_exception(page)
    screenshot(page, "classify")


def test_classify_broken_file_beside_good_one(page, tmp_path):
    broken = tmp_path / "garbage.xy"
    broken.write_bytes(bytes(range(256)) * 16)
    open_app_page(page, "/classify", "Classify patterns")
    upload(page, [EXAMPLE, broken])
    error = page.locator('[data-testid="stAlert"]').filter(has_text="garbage.xy")
    expect(error).to_be_visible()
    summary = page.locator('[data-testid="stMarkdownContainer"] p').filter(
        has_text=re.compile(r"^1 of 2 file\(s\) classified with model"))
    expect(summary).to_be_visible()
    check_top_five(page)
    assert_no_exception(page)
    screenshot(page, "classify_broken_file")


def test_compare_shows_confusion_matrices(page, tiny_model):
    name = tiny_model.metadata.name
    open_app_page(page, "/compare", "Compare models")
    chosen = page.locator('[data-testid="stMultiSelect"]').first.locator("[data-tag]")
    expect(chosen.first).to_be_visible()
    if name not in [chosen.nth(i).get_attribute("aria-label") for i in range(chosen.count())]:
        box = page.get_by_role("combobox", name="Models")
        box.click()
        box.fill(name)
        box.press("Enter")
        box.press("Escape")
        expect(chosen.filter(has_text=name)).to_have_count(1)
    names = [chosen.nth(i).get_attribute("aria-label") for i in range(chosen.count())]
    assert "default" in names and name in names, names
    expect(page.get_by_role("heading", name="Confusion matrices")).to_be_visible()
    metrics = page.locator('[data-testid="stDataFrame"]').first
    for model in ("default", name):
        expect(metrics).to_contain_text(model)
    expect(page.get_by_role("heading", name="How sure are these numbers?")).to_be_visible()
    intervals = page.locator('[data-testid="stDataFrame"]').nth(1)
    expect(intervals).to_contain_text("interval low")
    pairs = page.locator('[data-testid="stDataFrame"]').nth(2)  # each pair, and its verdict
    expect(pairs).to_contain_text("verdict")
    wait_for_plots(page, ".st-key-compare_cs_counts")
    wait_for_plots(page, ".st-key-compare_sg_confusion")
    counts = plot_traces(page, ".st-key-compare_cs_counts")
    assert counts and counts[0][0]["type"] == "heatmap" and counts[0][0]["points"] == 7, counts
    groups = plot_traces(page, ".st-key-compare_sg_confusion")
    assert groups and groups[0][0]["type"] == "heatmap" and groups[0][0]["points"] > 0, groups
    wait_for_plots(page, ".st-key-compare_confidence")
    curves = plot_traces(page, ".st-key-compare_confidence")
    lines = [t for t in curves[0] if t["type"] == "scatter" and t["points"] > 1] if curves else []
    assert len(lines) == len(names), curves  # one accuracy-against-coverage line per model
    problems = page.locator('[data-testid="stAlert"]').filter(has_text="cannot be")
    assert not problems.count(), problems.all_text_contents()
    assert_no_exception(page)
    screenshot(page, "compare")


def test_classify_indexes_the_uploaded_pattern_on_request(page):
    open_app_page(page, "/classify", "Classify patterns")
    upload(page, [EXAMPLE])
    check_top_five(page)
    expect(page.get_by_text("Index this pattern")).to_be_visible()
    tables = page.locator('[data-testid="stDataFrame"]')
    expect(tables.last).to_be_visible()
    before = tables.count()
    page.get_by_role("button", name="Find the unit cell").click()
    verdict = page.get_by_text(re.compile(r"^Best cell: cubic, lattice cF, M20 = "))
    expect(verdict).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"^Space groups of lattice cF"))).to_be_visible()
    assert tables.count() >= before + 2  # the cells, and the groups of the cell's lattice
    assert_no_exception(page)
    screenshot(page, "classify_index")
