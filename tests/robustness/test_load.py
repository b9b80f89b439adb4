"""Load: many classify requests at once on one loaded model, and large uploads.

The classify page serves every browser session from one cached :class:`Classifier`
(``ui.state.load_classifier``), so concurrent sessions call it from several threads at the
same time. Their answers must equal those of the same requests made one after another.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.classify import Classifier
from core.readers import PatternReadError, read_pattern
from tests.conftest import PROJECT
from ui.classify_data import UploadResult, classify_uploads

EXAMPLES = PROJECT / "examples"
CONCURRENT = 20


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load("default")


def _requests() -> list[list[tuple[str, bytes]]]:
    """Twenty uploads of 1 to all example files, each starting at another file."""
    uploads = [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.iterdir()) if p.is_file()]
    assert len(uploads) >= 6
    requests = []
    for i in range(CONCURRENT):
        start, size = i % len(uploads), 1 + (i * 3) % len(uploads)
        requests.append((uploads[start:] + uploads[:start])[:size])
    return requests


def _same(first: UploadResult, second: UploadResult) -> None:
    assert [p.file for p in first.predictions] == [p.file for p in second.predictions]
    assert first.truths == second.truths
    for a, b in zip(first.predictions, second.predictions):
        assert a.error == b.error
        if a.error:
            continue
        assert [n for n, _, _ in a.space_groups] == [n for n, _, _ in b.space_groups]
        assert [s for s, _ in a.crystal_systems] == [s for s, _ in b.crystal_systems]
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-5, atol=1e-7)


def test_concurrent_classify_requests_match_sequential_ones(classifier):
    requests = _requests()
    sequential = [classify_uploads(classifier, request) for request in requests]
    assert all(not p.error for result in sequential for p in result.predictions)

    barrier = threading.Barrier(CONCURRENT)

    def serve(request):
        barrier.wait(timeout=120)  # all twenty start together
        return classify_uploads(classifier, request)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        concurrent = list(pool.map(serve, requests))
    assert len(concurrent) == CONCURRENT
    for first, second in zip(sequential, concurrent):
        _same(first, second)


def test_concurrent_single_files_through_classify_sources(classifier):
    """The CLI's code path, one file per request, interleaved with failing requests."""
    files = [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.iterdir()) if p.is_file()]
    requests = [[files[i % len(files)]] if i % 4 else [("broken.xy", b"not a pattern")]
                for i in range(CONCURRENT)]
    sequential = [classifier.classify_sources(r) for r in requests]
    with ThreadPoolExecutor(CONCURRENT) as pool:
        concurrent = list(pool.map(classifier.classify_sources, requests))
    for first, second in zip(sequential, concurrent):
        (a,), (b,) = first, second
        assert a.file == b.file and a.error == b.error
        if a.error:
            assert a.error.startswith("broken.xy")
        else:
            assert a.space_groups[0][0] == b.space_groups[0][0]
            np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-5, atol=1e-7)


def test_a_large_upload_is_read_and_classified_in_bounded_time(classifier):
    """A fine-stepped scan of 425 000 points (about 8 MB) is handled in seconds."""
    tt = np.round(np.arange(5.0, 90.0, 0.0002), 4)
    y = 100 + 5000 * np.exp(-0.5 * ((tt - 28.44) / 0.05) ** 2) \
        + 3000 * np.exp(-0.5 * ((tt - 47.3) / 0.05) ** 2)
    text = "\n".join(f"{a:.4f} {b:.1f}" for a, b in zip(tt, y)).encode()
    assert len(text) > 5 * 2**20
    start = time.perf_counter()
    (prediction,) = classifier.classify_sources([("fine.xy", text)])
    assert prediction.error is None and prediction.pattern.two_theta.size == tt.size
    assert time.perf_counter() - start < 60
    with pytest.raises(PatternReadError, match=r"^fine\.xy: too large"):
        read_pattern(text, name="fine.xy", max_bytes=2**20)
