"""Training in the browser: a tiny run streams its epochs into the live charts and stops on
request, leaving a saved run with status 'stopped'."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import (assert_no_exception, screenshot, start_training,
                                wait_for_loss_epochs)

expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

NAME = "e2e-train"


def test_training_streams_epochs_and_stops(page, isolated_store):
    # A tiny model's validation loss stalls within a few epochs; without the long patience the
    # run could end by early stopping before the Stop button is pressed. On an idle machine an
    # epoch of this tiny run takes about 0.3 s: 50 epochs could end before the page shows one.
    start_training(page, NAME, epochs=500, steps=3, patience=100)
    expect(page.get_by_role("heading", name=f"Training '{NAME}' on 'default'")).to_be_visible()
    wait_for_loss_epochs(page, 2)
    progress = page.get_by_text(re.compile(r"^Epoch \d+ of 500 · batch \d+ of 3 ·"))
    expect(progress).to_be_visible()
    epoch = int(re.match(r"Epoch (\d+)", progress.inner_text()).group(1))
    assert epoch >= 2, progress.inner_text()
    assert_no_exception(page)
    screenshot(page, "training_live")

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text(re.compile(rf"^Run '{NAME}' was stopped after"))).to_be_visible(
        timeout=180_000)
    expect(page.get_by_role("heading", name=f"Latest run: {NAME}")).to_be_visible()
    wait_for_loss_epochs(page, 2, timeout_ms=30_000)  # the finished run's chart draws after its heading
    runs = page.locator('[data-testid="stDataFrame"]').filter(has_text=NAME).first
    expect(runs).to_contain_text("stopped")
    metadata = json.loads((isolated_store / "models" / NAME / "metadata.json").read_text())
    assert metadata["status"] == "stopped"
    settings = metadata["hyperparameters"]  # the TrainingConfig the form produced
    assert settings["hyperparameters"] == {"width": 8, "dense_units": 32}
    assert (settings["epochs"], settings["steps_per_epoch"], settings["batch_size"]) == (500, 3, 16)
    assert settings["early_stopping_patience"] == 100
    assert_no_exception(page)
    screenshot(page, "training_stopped")
