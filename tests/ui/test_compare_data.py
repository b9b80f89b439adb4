"""Data of the model comparison page: labelled sets from uploads, and the metrics table."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.evalsets import ModelEvaluation
from core.evaluation import evaluate
from ui import compare_data as cd


def _pattern(peak: float) -> bytes:
    angles = np.arange(5.0, 90.0, 0.05)
    counts = 10 + 1000 * np.exp(-0.5 * ((angles - peak) / 0.1) ** 2)
    return "\n".join(f"{a:.3f}, {c:.2f}" for a, c in zip(angles, counts)).encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name, expected", [
    ("a.xy", "a.xy"), ("folder/sub/b c.txt", "b_c.txt"), ("../evil.xy", None),
    ("/etc/passwd", None), ("C:\\x\\y.xy", None), ("dir\\z.xy", "z.xy"),
    ("__MACOSX/._a.xy", None), (".hidden", None), ("x/..", None), ("", None),
])
def test_safe_name(name, expected):
    assert cd.safe_name(name) == expected


def test_zip_with_labels_in_a_folder(tmp_path):
    labels = "pattern_file,sg_number\ndata/p1.xy,14\np2.xy,225\nmissing.xy,62\n"
    data = _zip({"set/labels.csv": labels.encode(), "set/data/p1.xy": _pattern(30),
                 "set/p2.xy": _pattern(40), "../escape.xy": _pattern(50),
                 "__MACOSX/set/._p1.xy": b"junk"})
    labelled = cd.labelled_upload([("set.zip", data)])
    assert list(labelled.labels) == [14, 225]
    assert [p.name for p in labelled.patterns] == ["p1.xy", "p2.xy"]
    skipped = dict(labelled.skipped)
    assert "../escape.xy" in skipped and "__MACOSX/set/._p1.xy" in skipped
    assert "missing.xy" in skipped


def test_loose_files_and_duplicates():
    labels = b"file,sg_number\np1.xy,14\n"
    labelled = cd.labelled_upload([("labels.csv", labels), ("p1.xy", _pattern(30)),
                                   ("a.zip", _zip({"x/p1.xy": _pattern(60)}))])
    assert list(labelled.labels) == [14]
    assert any("second file" in reason for _, reason in labelled.skipped)


@pytest.mark.parametrize("labels, message", [
    (b"name,group\np1.xy,14\n", "pattern_file"),
    (b"file,sg_number\np1.xy,231\n", "1-230"),
    (b"file,sg_number\np1.xy,abc\n", "1-230"),
])
def test_bad_labels_are_named(labels, message):
    with pytest.raises(cd.UploadError, match=message):
        cd.labelled_upload([("labels.csv", labels), ("p1.xy", _pattern(30))])


def test_upload_errors():
    with pytest.raises(cd.UploadError, match="no file"):
        cd.labelled_upload([])
    with pytest.raises(cd.UploadError, match="bad.zip: not a readable zip"):
        cd.labelled_upload([("bad.zip", b"not a zip")])
    with pytest.raises(cd.UploadError, match="no labelled pattern"):
        cd.labelled_upload([("p1.xy", _pattern(30))])
    with pytest.raises(cd.UploadError, match="uncompressed"):
        cd.labelled_upload([("big.zip", _zip({"a.xy": b"0" * 5000}))], max_bytes=1000)
    with pytest.raises(cd.UploadError, match="no usable file"):
        cd.labelled_upload([("../x.xy", b"1")])


def _evaluation(model: str, labels, predicted, seconds: float) -> ModelEvaluation:
    probabilities = np.full((len(labels), 230), 1e-4)
    probabilities[np.arange(len(labels)), np.asarray(predicted) - 1] = 1
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return ModelEvaluation(model=model, set_name="s", labels=np.asarray(labels),
                           probabilities=probabilities, metrics=evaluate(labels, probabilities),
                           seconds=seconds)


def test_metrics_frame_and_baselines():
    labels = np.array([14, 14, 14, 2, 225])
    good = _evaluation("good", labels, [14, 14, 14, 2, 221], 2.0)
    bad = _evaluation("bad", labels, [14, 15, 15, 1, 221], 1.0)
    frame = cd.metrics_frame([good, bad])
    assert list(frame.index) == ["good", "bad", cd.MAJORITY, cd.FREQUENCY]
    for evaluation in (good, bad):
        for column, attribute in cd.METRIC_COLUMNS.items():
            assert frame.loc[evaluation.model, column] == getattr(evaluation.metrics, attribute)
    assert frame.loc["good", cd.SECONDS] == 2.0 and frame.loc["good", cd.SAMPLES] == 5
    # Majority class 14 (f = 0.6) of 3 classes: balanced accuracy 1/3, macro-F1 0.75/3.
    majority = frame.loc[cd.MAJORITY]
    assert majority["space group top-1"] == pytest.approx(0.6)
    assert majority["space group balanced accuracy"] == pytest.approx(1 / 3)
    assert majority["space group macro-F1"] == pytest.approx(2 * 0.6 / 1.6 / 3)
    assert frame.loc[cd.FREQUENCY, "space group top-1"] == pytest.approx(0.36 + 0.04 + 0.04)
    assert np.isnan(frame.loc[cd.FREQUENCY, cd.SECONDS])
    # The majority baseline's macro-F1 equals what scikit-learn gives for that predictor.
    constant = _evaluation("constant", labels, [14] * 5, 0.0)
    assert constant.metrics.macro_f1 == pytest.approx(majority["space group macro-F1"])
    assert constant.metrics.balanced_accuracy == pytest.approx(majority["space group balanced accuracy"])

    html = cd.style_metrics(frame, ["good", "bad"]).to_html()
    assert "60.0%" in html and "—" in html
    assert html.count("font-weight: bold") >= 1
    assert cd.metrics_frame([]).empty


def test_style_highlights_best_model_only():
    frame = pd.DataFrame({column: [0.5, 0.2, 0.9] for column in cd.METRIC_COLUMNS},
                         index=["a", "b", cd.MAJORITY])
    frame[cd.SAMPLES] = 10
    frame[cd.SECONDS] = [3.0, 1.0, np.nan]
    styler = cd.style_metrics(frame, ["a", "b"])
    styler._compute()
    styled = {(r, c) for (r, c), props in styler.ctx.items() if props}
    columns = list(frame.columns)
    metric_cells = {(0, columns.index(c)) for c in cd.METRIC_COLUMNS}
    assert metric_cells <= styled  # "a" beats "b"; the baseline row's 0.9 is not highlighted
    assert (1, columns.index(cd.SECONDS)) in styled  # fastest model
    assert not any(r == 2 for r, _ in styled)


def test_confidence_table_splits_at_the_low_confidence_line():
    labels = np.array([14, 14, 2, 225])
    probabilities = np.full((4, 230), 0.0)
    for row, (top, p) in enumerate([(14, 0.9), (15, 0.6), (2, 0.2), (1, 0.1)]):
        probabilities[row, top - 1] = p
        probabilities[row, 100:140] += (1 - p) / 40
    sure = ModelEvaluation(model="m", set_name="s", labels=labels, probabilities=probabilities,
                           metrics=evaluate(labels, probabilities), seconds=1.0)
    table = cd.confidence_table([sure, _evaluation("all_right", labels, labels, 1.0)],
                                threshold=0.25)
    assert list(table.index) == ["m", "all_right"]
    row = table.loc["m"]
    assert row["flagged low confidence"] == "50.0%"  # 0.2 and 0.1 are below 0.25
    assert row["accuracy, not flagged"] == "50.0%" and row["accuracy, flagged"] == "50.0%"
    assert table.loc["all_right", "flagged low confidence"] == "0.0%"
    assert table.loc["all_right", "accuracy, flagged"] == "—"  # nothing flagged
    gap = abs(0.9 - 1) + abs(0.6 - 0) + abs(0.2 - 1) + abs(0.1 - 0)
    assert row["calibration error (space group)"] == f"{gap / 4:.1%}"


def test_interval_table_shows_each_models_metric_with_its_interval():
    rng = np.random.default_rng(0)
    labels = rng.choice([2, 14, 62, 225], size=200)
    half = _evaluation("half", labels, np.where(np.arange(200) % 2 == 0, labels, 1), 1.0)
    table = cd.interval_table([half], "top1")
    row = table.loc["half"]
    assert row["value"] == "50.0%" and row[cd.SAMPLES] == "200"
    low, high = (float(row[c].rstrip("%")) for c in ("interval low", "interval high"))
    assert 40 < low < 50 < high < 60  # about ±7 points for 200 patterns at 50 %


def test_difference_table_names_the_better_model_only_when_the_set_can_tell():
    rng = np.random.default_rng(1)
    labels = rng.choice([2, 14, 62, 225], size=300)
    right = rng.random(300)
    good = _evaluation("good", labels, np.where(right < 0.7, labels, 1), 1.0)
    poor = _evaluation("poor", labels, np.where(right < 0.2, labels, 1), 1.0)
    almost = _evaluation("almost", labels, np.where(right < 0.69, labels, 1), 1.0)
    other_set = _evaluation("other", labels[:100], labels[:100], 1.0)
    table = cd.difference_table([good, poor, almost, other_set], "top1")
    pairs = table.set_index(["model", "minus"])
    assert set(pairs.index) == {("good", "poor"), ("good", "almost"), ("poor", "almost")}
    assert pairs.loc[("good", "poor"), "verdict"] == "good is better"
    assert pairs.loc[("poor", "almost"), "verdict"] == "almost is better"
    assert pairs.loc[("good", "almost"), "verdict"] == "no clear difference on this set"
    difference = 100 * (good.metrics.top1 - poor.metrics.top1)
    assert pairs.loc[("good", "poor"), "difference (points)"] == f"{difference:+.1f}"
    assert cd.difference_table([good], "top1").empty
