"""Labelled evaluation sets (labels.csv folders, XY + DIF pairs, CIF folders, a dataset's
test split) and model evaluation on them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from core import dataset as store
from core.absences import best_cell
from core.augmentation import NO_AUGMENTATION
from core.classify import Classifier
from core.evalsets import (
    INDEXING_GRID,
    LabelledSet,
    dataset_test_set,
    evaluate_model,
    labelled_folder,
    simulated_cif_folder,
)
from core.peaks import pattern_peaks
from core.training import TrainingConfig, fixed_inputs
from tests.conftest import RRUFF_DEV, needs_rruff

SILICON_LINES = ((28.44, 1000.0), (47.30, 550.0), (56.12, 300.0))

# A RRUFF-style DIF for silicon, written for this test.
SILICON_DIF = """      Silicon
      Test data written by hand

      CELL PARAMETERS:   5.4309  5.4309  5.4309   90.000   90.000   90.000
      SPACE GROUP: Fd-3m
      X-RAY WAVELENGTH:     1.541838

               2-THETA      INTENSITY    D-SPACING   H   K   L
                28.47        100.00        3.1355    1   1   1
                47.35         60.00        1.9201    2   2   0
                56.17         35.00        1.6375    3   1   1
                69.19          8.00        1.3577    4   0   0
                76.43         12.00        1.2459    3   3   1
"""


def write_xy(path: Path, peaks=SILICON_LINES, seed: int = 0, sep: str = " ") -> Path:
    tt = np.arange(5.0, 90.01, 0.02)
    y = 60 + sum(h * np.exp(-0.5 * ((tt - c) / 0.06) ** 2) for c, h in peaks)
    y = y + np.random.default_rng(seed).normal(0, 2, tt.size)
    path.write_text("\n".join(f"{a:.3f}{sep}{b:.2f}" for a, b in zip(tt, y)) + "\n")
    return path


@pytest.fixture(scope="module")
def classifier(tiny_model) -> Classifier:
    """The network alone: these tests are about the sets (indexing has its own test below)."""
    return Classifier.load("tiny", index=False)


def test_labels_csv_folder(tmp_path):
    write_xy(tmp_path / "si.xy")
    write_xy(tmp_path / "other.csv", peaks=((20.0, 400.0), (33.0, 800.0)), seed=1, sep=",")
    (tmp_path / "broken.xy").write_text("nothing useful\n")
    pd.DataFrame({"pattern_file": ["si.xy", "other.csv", "broken.xy", "absent.xy"],
                  "sg_number": [227, 62, 14, 2]}).to_csv(tmp_path / "labels.csv", index=False)
    labelled = labelled_folder(tmp_path)
    assert isinstance(labelled, LabelledSet)
    assert labelled.name == tmp_path.name
    assert len(labelled) == 2 == len(labelled.patterns)
    assert labelled.labels.tolist() == [227, 62]
    assert labelled.labels.dtype == np.int64
    assert [p.name.split("/")[-1] for p in labelled.patterns] == ["si.xy", "other.csv"]
    assert [name for name, _ in labelled.skipped] == ["broken.xy", "absent.xy"]
    assert all(name in reason for name, reason in labelled.skipped)


def test_labels_csv_with_file_column(tmp_path):
    write_xy(tmp_path / "a.xy")
    pd.DataFrame({"file": ["a.xy"], "sg_number": [227]}).to_csv(tmp_path / "labels.csv", index=False)
    labelled = labelled_folder(tmp_path, name="custom")
    assert labelled.name == "custom" and labelled.labels.tolist() == [227]


def test_xy_and_dif_pairs(tmp_path):
    write_xy(tmp_path / "R999001.xy")
    (tmp_path / "R999001_CIF.txt").write_text(SILICON_DIF)
    write_xy(tmp_path / "R999002.txt", seed=2)
    (tmp_path / "R999002.dif").write_text(SILICON_DIF.replace("Fd-3m", "P2_1/c"))
    (tmp_path / "R999003_CIF.txt").write_text(SILICON_DIF)  # no measured partner: ignored
    write_xy(tmp_path / "R999004.xy")
    (tmp_path / "R999004_CIF.txt").write_text(SILICON_DIF.replace("Fd-3m", "Q9"))  # bad group
    labelled = labelled_folder(tmp_path)
    names = sorted(Path(p.name).name for p in labelled.patterns)
    assert names == ["R999001.xy", "R999002.txt"]
    by_name = dict(zip((Path(p.name).name for p in labelled.patterns), labelled.labels.tolist()))
    assert by_name == {"R999001.xy": 227, "R999002.txt": 14}
    assert [name for name, _ in labelled.skipped] == ["R999004_CIF.txt"]
    # The measured partner is used, not the DIF's sticks.
    assert all(p.kind != "dif" for p in labelled.patterns)


def test_a_labels_column_names_other_files_to_read(tmp_path):
    """RRUFF's labels.csv also names each mineral's DIF: read it as its peak list instead."""
    write_xy(tmp_path / "R999001.xy")
    (tmp_path / "R999001_CIF.txt").write_text(SILICON_DIF)
    pd.DataFrame({"pattern_file": ["R999001.xy"], "structure_file": ["R999001_CIF.txt"],
                  "sg_number": [227]}).to_csv(tmp_path / "labels.csv", index=False)
    measured = labelled_folder(tmp_path)
    sticks = labelled_folder(tmp_path, column="structure_file")
    assert measured.labels.tolist() == sticks.labels.tolist() == [227]
    assert measured.patterns[0].kind != "dif" and sticks.patterns[0].kind == "dif"
    assert sticks.patterns[0].is_sticks
    with pytest.raises(ValueError, match="no column 'cif_file'"):
        labelled_folder(tmp_path, column="cif_file")
    (tmp_path / "labels.csv").unlink()
    with pytest.raises(ValueError, match="labels.csv"):
        labelled_folder(tmp_path, column="structure_file")


def test_empty_folder(tmp_path):
    labelled = labelled_folder(tmp_path)
    assert len(labelled) == 0 and labelled.patterns == []


def test_simulated_cif_folder(tmp_path):
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    silicon = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    (tmp_path / "nacl.cif").write_text(str(CifWriter(rock_salt, symprec=0.1)))
    (tmp_path / "si.cif").write_text(str(CifWriter(silicon, symprec=0.1)))
    (tmp_path / "bad.cif").write_text("not a cif\n")
    pd.DataFrame({"file": ["nacl.cif", "bad.cif", "si.cif"], "sg_number": [225, 2, 227]}).to_csv(
        tmp_path / "labels.csv", index=False)
    calls = []
    labelled = simulated_cif_folder(tmp_path, augmentation=NO_AUGMENTATION,
                                    progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert labelled.labels.tolist() == [225, 227]
    assert [name for name, _ in labelled.skipped] == ["bad.cif"]
    for pattern in labelled.patterns:
        assert pattern.kind == "simulated"
        assert pattern.two_theta.shape == (INDEXING_GRID.size,)
        assert np.all(np.isfinite(pattern.intensity))
    # Clean silicon: the strongest point is (111).
    si = labelled.patterns[1]
    assert si.two_theta[si.intensity.argmax()] == pytest.approx(28.47, abs=0.01)
    # Rendered finely, as a measured file would be, the profile indexes to silicon's cell.
    cell, _ = best_cell(pattern_peaks(si))
    assert cell.bravais_lattice == "cF" and cell.cell[0] == pytest.approx(5.431, abs=0.005)
    # The same seed gives the same realistic patterns; another seed different ones.
    once = simulated_cif_folder(tmp_path, seed=4)
    twice = simulated_cif_folder(tmp_path, seed=4)
    np.testing.assert_array_equal(once.patterns[0].intensity, twice.patterns[0].intensity)
    other = simulated_cif_folder(tmp_path, seed=5)
    assert not np.allclose(once.patterns[0].intensity, other.patterns[0].intensity)


def test_dataset_test_set_is_the_split(small_dataset):
    labelled = dataset_test_set(small_dataset)
    expected = store.split(small_dataset, 0.1, 0.1, 0).test
    np.testing.assert_array_equal(labelled.rows, expected)
    np.testing.assert_array_equal(labelled.labels, small_dataset.labels[expected])
    assert labelled.dataset is small_dataset
    assert labelled.name == "small test split"
    assert len(labelled) == len(expected) > 0
    other = dataset_test_set(small_dataset, test=0.3, seed=1)
    np.testing.assert_array_equal(other.rows, store.split(small_dataset, 0.1, 0.3, 1).test)


def test_held_out_rows_follow_each_models_own_split(small_dataset):
    from core.evalsets import held_out_test_set, model_test_rows
    from core.registry import ModelMetadata

    def trained(name, dataset_name, **split_settings):
        return ModelMetadata(name=name, kind="resnet1d", dataset={"name": dataset_name},
                             hyperparameters=split_settings)

    first = trained("first", "small", validation=0.05, test=0.3, split_seed=1)
    second = trained("second", "small", validation=0.1, test=0.3, split_seed=2)
    elsewhere = trained("elsewhere", "default")
    own = store.split(small_dataset, 0.05, 0.3, 1).test
    np.testing.assert_array_equal(model_test_rows(small_dataset, first), own)
    np.testing.assert_array_equal(model_test_rows(small_dataset, elsewhere),
                                  store.split(small_dataset).test)
    # One model trained on it: its own test split, whatever else is compared.
    alone = held_out_test_set(small_dataset, [first, elsewhere])
    np.testing.assert_array_equal(alone.rows, own)
    np.testing.assert_array_equal(alone.labels, small_dataset.labels[own])
    # Two with different splits: only the rows both held out.
    both = held_out_test_set(small_dataset, [first, second])
    expected = np.intersect1d(own, store.split(small_dataset, 0.1, 0.3, 2).test)
    assert 0 < len(both) < len(own)
    np.testing.assert_array_equal(both.rows, expected)
    assert "first, second" in both.name
    # None trained on it: the default split.
    np.testing.assert_array_equal(held_out_test_set(small_dataset, [elsewhere]).rows,
                                  store.split(small_dataset).test)
    # A model trained on several datasets counts as trained on each part.
    parts = ModelMetadata(name="parts", kind="resnet1d", hyperparameters={"test": 0.3},
                          dataset={"name": "small+other", "parts": ["small", "other"]})
    np.testing.assert_array_equal(held_out_test_set(small_dataset, [parts]).rows,
                                  store.split(small_dataset, 0.1, 0.3, 0).test)


def test_evaluate_model_on_dataset_split(classifier, small_dataset):
    labelled = dataset_test_set(small_dataset)
    result = evaluate_model(classifier, labelled)
    assert result.model == "tiny" and result.set_name == "small test split"
    assert result.metrics.n == len(labelled)
    assert result.probabilities.shape == (len(labelled), 230)
    np.testing.assert_array_equal(result.labels, labelled.labels)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert 0 <= result.metrics.top1 <= result.metrics.top5 <= 1
    assert result.seconds > 0
    # The training run's own test evaluation used the same rows and inputs.
    assert result.metrics.top1 == pytest.approx(classifier.metadata.metrics["top1"], abs=1e-9)
    assert result.metrics.n == classifier.metadata.metrics["n"]


def test_several_draws_stack_renderings_of_the_same_rows(classifier, small_dataset):
    labelled = dataset_test_set(small_dataset)
    once = evaluate_model(classifier, labelled)
    thrice = evaluate_model(classifier, replace(labelled, draws=3))
    n = len(labelled)
    assert thrice.draws == 3 and thrice.metrics.n == 3 * n
    np.testing.assert_array_equal(thrice.labels, np.tile(labelled.labels, 3))
    # The first draw is the single-draw evaluation; the others see other perturbations.
    np.testing.assert_allclose(thrice.probabilities[:n], once.probabilities, atol=1e-5)
    assert not np.allclose(thrice.probabilities[n:2 * n], once.probabilities, atol=1e-3)
    clean = evaluate_model(classifier, replace(labelled, draws=3, clean=True))
    assert clean.draws == 1 and clean.metrics.n == n  # clean peaks have nothing to draw


def test_a_clean_set_is_rendered_without_perturbations(classifier, small_dataset):
    labelled = dataset_test_set(small_dataset)
    clean = evaluate_model(classifier, replace(labelled, clean=True))
    meta = classifier.metadata
    config = TrainingConfig(name="clean", input_type=meta.input_type, grid=meta.two_theta_grid,
                            augmentation=NO_AUGMENTATION)
    inputs, labels = fixed_inputs(small_dataset, labelled.rows, config, seed=99)
    np.testing.assert_array_equal(clean.labels, labels)
    np.testing.assert_allclose(clean.probabilities, classifier.predict_inputs(inputs), atol=1e-5)
    perturbed = evaluate_model(classifier, labelled)
    assert not np.allclose(clean.probabilities, perturbed.probabilities, atol=1e-3)


def test_an_indexing_classifier_reranks_simulated_rows_by_their_own_fine_profiles(
        classifier, small_dataset):
    from core.absences import best_cell, rerank
    from core.augmentation import augment_profiles
    from core.evalsets import INDEXING_GRID, INDEXING_SEED
    from core.peaks import pick_peaks
    from core.preprocess import estimate_background
    from core.training import stick_batch

    labelled = dataset_test_set(small_dataset)
    labelled = replace(labelled, rows=labelled.rows[:6], labels=labelled.labels[:6])
    indexing = Classifier(classifier.model, classifier.metadata, classifier.adjust_prior)
    network, indexed = evaluate_model(classifier, labelled), evaluate_model(indexing, labelled)
    profiles = augment_profiles(stick_batch(small_dataset, labelled.rows), INDEXING_GRID,
                                classifier.metadata.training_augmentation,
                                np.random.default_rng(INDEXING_SEED)).astype(np.float64)
    angles = INDEXING_GRID.angles.astype(np.float64)
    for row, profile in enumerate(profiles):
        peaks = pick_peaks(angles, profile, estimate_background(angles, profile, "snip"))
        cell, evidence = best_cell(peaks, 1.54184)
        np.testing.assert_allclose(indexed.probabilities[row], rerank(
            network.probabilities[row], cell, evidence, classifier.metadata.classes), atol=1e-6)
    # clean peaks are the network's own test: not indexed
    clean = replace(labelled, clean=True)
    np.testing.assert_allclose(evaluate_model(indexing, clean).probabilities,
                               evaluate_model(classifier, clean).probabilities, atol=1e-6)


def test_evaluate_model_on_measured_folder(classifier, tmp_path):
    write_xy(tmp_path / "one.xy")
    write_xy(tmp_path / "two.xy", peaks=((20.0, 400.0), (33.0, 800.0)), seed=1)
    pd.DataFrame({"pattern_file": ["one.xy", "two.xy"], "sg_number": [227, 62]}).to_csv(
        tmp_path / "labels.csv", index=False)
    labelled = labelled_folder(tmp_path)
    result = evaluate_model(classifier, labelled)
    assert result.metrics.n == len(labelled) == 2
    assert result.labels.tolist() == [227, 62]
    expected = classifier.classify_patterns(labelled.patterns)
    np.testing.assert_allclose(result.probabilities, np.array([p.probabilities for p in expected]))


def test_evaluate_model_drops_patterns_the_model_cannot_use(classifier, tmp_path):
    write_xy(tmp_path / "fine.xy")
    # Readable, but measured entirely outside the model's 5-90° range.
    tt = np.arange(100.0, 120.0, 0.05)
    (tmp_path / "outside.xy").write_text("\n".join(f"{a:.2f} {50 + a:.1f}" for a in tt) + "\n")
    pd.DataFrame({"pattern_file": ["outside.xy", "fine.xy"], "sg_number": [14, 227]}).to_csv(
        tmp_path / "labels.csv", index=False)
    labelled = labelled_folder(tmp_path)
    assert len(labelled) == 2
    result = evaluate_model(classifier, labelled)
    assert result.metrics.n == 1 and result.labels.tolist() == [227]
    assert result.probabilities.shape == (1, 230)


@needs_rruff
def test_rruff_dev_folder_has_222_patterns():
    labelled = labelled_folder(RRUFF_DEV)
    assert len(labelled) == 222
    assert labelled.skipped == []
    table = pd.read_csv(RRUFF_DEV / "labels.csv")
    assert labelled.labels.tolist() == table["sg_number"].tolist()


@needs_rruff
def test_rruff_dev_minerals_read_from_their_dif_peak_lists():
    sticks = labelled_folder(RRUFF_DEV, column="structure_file")
    assert len(sticks) == 222 and sticks.skipped == []
    assert all(p.is_sticks for p in sticks.patterns)
    assert sticks.labels.tolist() == labelled_folder(RRUFF_DEV).labels.tolist()
