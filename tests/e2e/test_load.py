"""Two browser sessions at once: one trains a tiny model while the other classifies a file."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import (EXAMPLE, assert_no_exception, check_top_five, open_app_page,
                                screenshot, start_training, upload)

expect = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed").expect

NAME = "e2e-load"


def test_training_and_classifying_sessions_at_once(new_page, isolated_store):
    trainer, classifier = new_page(), new_page()
    open_app_page(classifier, "/classify", "Classify patterns")
    # Long enough (about 10 s on an idle machine) to still run when the upload is classified.
    start_training(trainer, NAME, epochs=30, steps=3)
    live = trainer.get_by_role("heading", name=f"Training '{NAME}' on 'default'")

    # While the run trains in the first session, the second one classifies an upload.
    upload(classifier, [EXAMPLE])
    check_top_five(classifier)
    overlapped = live.is_visible()
    assert_no_exception(classifier)
    screenshot(classifier, "load_classify")

    finished = trainer.get_by_text(re.compile(rf"^Run '{NAME}' finished in"))
    expect(finished).to_be_visible(timeout=240_000)
    runs = trainer.locator('[data-testid="stDataFrame"]').filter(has_text=NAME).first
    expect(runs).to_contain_text("done")
    metadata = json.loads((isolated_store / "models" / NAME / "metadata.json").read_text())
    assert metadata["status"] == "done"
    assert_no_exception(trainer)
    screenshot(trainer, "load_training")
    assert overlapped, "training had already finished when the classification came back"
