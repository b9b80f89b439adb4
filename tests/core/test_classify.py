"""Measured files -> ranked predictions with the session's tiny model, and a padded-input model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import RRUFF_DEV, needs_rruff
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from core import registry
from core.classify import LOW_CONFIDENCE, Classifier, Prediction
from core.indexing import RERANK_M20
from core.readers import read_pattern
from core.models import build
from core.symmetry import CRYSTAL_SYSTEMS, by_number

SILICON_LINES = ((28.44, 1000.0), (47.30, 550.0), (56.12, 300.0), (69.13, 80.0), (76.38, 110.0))


def write_xy(path: Path, peaks=SILICON_LINES, start: float = 5.0, stop: float = 90.0,
             step: float = 0.02, seed: int = 0) -> Path:
    """A measured-looking pattern: Gaussian peaks on a sloping background with noise."""
    tt = np.arange(start, stop + step / 2, step)
    y = 80 + 0.5 * (90 - tt) + sum(h * np.exp(-0.5 * ((tt - c) / 0.06) ** 2) for c, h in peaks)
    y = y + np.random.default_rng(seed).normal(0, 3, tt.size)
    path.write_text("# 2theta intensity\n" + "\n".join(f"{a:.3f} {b:.2f}" for a, b in zip(tt, y)) + "\n")
    return path


@pytest.fixture(scope="module")
def classifier(tiny_model) -> Classifier:
    return Classifier.load("tiny")


@pytest.fixture(scope="module")
def padded_classifier() -> Classifier:
    """An untrained baseline ANN on the report's padded stick input (weights do not matter
    for the input path)."""
    import keras

    keras.utils.set_random_seed(0)
    model = build("baseline_ann", 2 * 64, units=16)
    meta = registry.ModelMetadata(name="padded_cls", kind="baseline_ann", input_type="padded",
                                  padded_length=64)
    registry.save_model(model, meta)
    return Classifier.load("padded_cls")


def check_prediction(prediction: Prediction, top: int = 5) -> None:
    assert prediction.error is None
    assert len(prediction.space_groups) == top
    probabilities = [p for _, _, p in prediction.space_groups]
    assert probabilities == sorted(probabilities, reverse=True)
    for number, symbol, _ in prediction.space_groups:
        assert 1 <= number <= 230 and by_number(number).symbol == symbol
    assert prediction.probabilities.shape == (230,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert prediction.space_groups[0][2] == pytest.approx(prediction.probabilities.max())
    systems = dict(prediction.crystal_systems)
    assert set(systems) == set(CRYSTAL_SYSTEMS) and len(prediction.crystal_systems) == 7
    assert sum(systems.values()) == pytest.approx(1.0, abs=1e-4)
    ordered = [p for _, p in prediction.crystal_systems]
    assert ordered == sorted(ordered, reverse=True)


def test_good_and_bad_files_in_one_call(classifier, tmp_path):
    good = write_xy(tmp_path / "silicon.xy")
    other = write_xy(tmp_path / "other.xy", peaks=((20.0, 500.0), (35.0, 900.0)), seed=1)
    bad = tmp_path / "broken.xy"
    bad.write_text("this is not\na diffraction pattern\n")
    predictions = classifier.classify_files([good, bad, other])
    assert [p.file for p in predictions] == [str(good), str(bad), str(other)]
    check_prediction(predictions[0])
    check_prediction(predictions[2])
    assert predictions[1].error and "broken.xy" in predictions[1].error
    assert predictions[1].space_groups == [] and predictions[1].crystal_systems == []
    assert predictions[1].probabilities is None
    assert predictions[0].preprocessed.profile.shape == (classifier.grid.size,)
    assert predictions[0].pattern.name.endswith("silicon.xy")
    # Different patterns, different answers.
    assert not np.allclose(predictions[0].probabilities, predictions[2].probabilities)


def test_same_as_predicting_the_inputs(classifier, tmp_path):
    path = write_xy(tmp_path / "si.xy")
    prediction = classifier.classify_files([path])[0]
    again = classifier.classify_files([path])[0]
    np.testing.assert_allclose(prediction.probabilities, again.probabilities)
    direct = classifier.predict_inputs(prediction.preprocessed.profile[None, :].astype(np.float32))
    np.testing.assert_allclose(prediction.probabilities, direct[0], atol=1e-6)
    assert classifier.predict_inputs(np.zeros((0, classifier.grid.size), np.float32)).shape == (0, 230)


def test_to_json_schema(classifier, tmp_path):
    good = write_xy(tmp_path / "good.xy")
    empty = tmp_path / "empty.xy"
    empty.write_text("")
    ok, failed = (p.to_json() for p in classifier.classify_files([good, empty]))
    # indexed by default: a "cell" (null when none is found) for every pattern read
    assert set(ok) == {"file", "space_group", "crystal_system", "error", "cell"}
    assert set(failed) == {"file", "space_group", "crystal_system", "error"}
    network, = (p.to_json() for p in classifier.classify_files([good], index=False))
    assert set(network) == {"file", "space_group", "crystal_system", "error"}
    for item in (ok, failed, network):
        json.dumps(item)
    assert len(ok["space_group"]) == 5 and len(ok["crystal_system"]) == 7
    assert ok["error"] is None and ok["file"] == str(good)
    for entry in ok["space_group"]:
        assert set(entry) == {"number", "symbol", "probability"}
        assert isinstance(entry["number"], int) and isinstance(entry["probability"], float)
    for entry in ok["crystal_system"]:
        assert set(entry) == {"name", "probability"}
    assert sum(e["probability"] for e in ok["crystal_system"]) == pytest.approx(1.0, abs=1e-4)
    assert failed["space_group"] == [] and failed["crystal_system"] == []
    assert "empty.xy" in failed["error"]


def test_top_and_bytes_sources(classifier, tmp_path):
    data = write_xy(tmp_path / "upload.xy").read_bytes()
    predictions = classifier.classify_sources([("upload.xy", data), ("junk.xy", b"\x00\x01\x02")], top=3)
    check_prediction(predictions[0], top=3)
    assert predictions[0].file == "upload.xy"
    assert predictions[1].error.startswith("junk.xy")
    assert len(predictions[0].to_json()["space_group"]) == 3


def test_out_of_range_pattern_is_an_error(classifier, tmp_path):
    # Measured only above the model's 90° limit.
    high = write_xy(tmp_path / "high.xy", peaks=((100.0, 500.0),), start=95.0, stop=120.0)
    prediction = classifier.classify_files([high])[0]
    assert prediction.error and "high.xy" in prediction.error
    assert prediction.space_groups == []


def test_wavelength_changes_the_input(classifier, tmp_path):
    path = write_xy(tmp_path / "mo.xy", peaks=((13.0, 900.0), (21.5, 500.0)), start=5, stop=40)
    cu, mo = (classifier.classify_files([path], wavelength=w)[0] for w in (None, 0.71073))
    assert cu.error is None and mo.error is None
    # Mo-Kα angles are converted to the model's Cu Kα: the strongest point moves to ~28.4°.
    angles = classifier.grid.angles
    assert angles[mo.preprocessed.profile.argmax()] == pytest.approx(28.4, abs=0.3)
    assert angles[cu.preprocessed.profile.argmax()] == pytest.approx(13.0, abs=0.1)


def test_low_confidence_flag():
    assert Prediction(file="x", space_groups=[(14, "P2_1/c", LOW_CONFIDENCE / 2)]).low_confidence
    assert not Prediction(file="x", space_groups=[(14, "P2_1/c", 0.9)]).low_confidence
    assert not Prediction(file="x", error="bad").low_confidence


def test_padded_model_classifies_profiles_and_sticks(padded_classifier, tmp_path):
    assert padded_classifier.metadata.input_length == 128
    xy = write_xy(tmp_path / "si.xy")
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    cif = tmp_path / "NaCl.cif"
    cif.write_text(str(CifWriter(structure, symprec=0.1)))
    predictions = padded_classifier.classify_files([xy, cif, tmp_path / "missing.xy"])
    check_prediction(predictions[0])
    check_prediction(predictions[1])
    assert predictions[2].error and "missing.xy" in predictions[2].error
    assert predictions[1].true_sg == 225
    inputs, details = padded_classifier.inputs([predictions[0].pattern, predictions[1].pattern])
    assert inputs.shape == (2, 128)
    # Peak positions (2θ/90) first, relative heights after; the five silicon lines are found.
    positions = inputs[0, :64][inputs[0, :64] > 0] * 90
    assert len(positions) >= 5
    for centre, _ in SILICON_LINES:
        assert np.min(np.abs(positions - centre)) < 0.1
    assert inputs[0, 64:].max() == pytest.approx(1.0)
    # The CIF's sticks are used as they are: rock salt's first line is (111) at 27.4°.
    assert inputs[1, 0] * 90 == pytest.approx(27.37, abs=0.05)


@needs_rruff
def test_rruff_pattern_and_dif(classifier):
    files = sorted(RRUFF_DEV.glob("R*.csv"))[:2] + sorted(RRUFF_DEV.glob("R*_CIF.txt"))[:1]
    predictions = classifier.classify_files(files)
    for prediction in predictions:
        check_prediction(prediction)
    assert predictions[2].true_sg is not None and 1 <= predictions[2].true_sg <= 230


@needs_rruff
def test_every_rruff_pattern_classifies_with_the_bundled_model():
    files = sorted(RRUFF_DEV.glob("R*.csv"))
    assert len(files) == 222
    network = Classifier.load("default", index=False)  # indexing all 222 takes minutes
    predictions = network.classify_files(files)
    errors = [(p.file, p.error) for p in predictions if p.error]
    assert errors == []
    assert all(len(p.space_groups) == 5 and len(p.crystal_systems) == 7 for p in predictions)
    assert all(abs(sum(prob for _, prob in p.crystal_systems) - 1) < 1e-4 for p in predictions)
    # The bundled model recognises crystal systems of real patterns better than always
    # guessing the commonest one; a retrained default that loses this must not ship.
    from core.evalsets import labelled_folder, evaluate_model

    metrics = evaluate_model(network, labelled_folder(RRUFF_DEV)).metrics
    assert metrics.n == 222
    assert metrics.system_accuracy > metrics.majority_system


@needs_rruff
def test_rruff_patterns_are_indexed_and_reranked_by_default():
    from core.absences import best_cell, rerank
    from core.peaks import pattern_peaks

    files = sorted(RRUFF_DEV.glob("R*.csv"))[:12]
    indexing = Classifier.load("default")
    assert indexing.index
    network = Classifier(indexing.model, indexing.metadata, indexing.adjust_prior, index=False)
    indexed, plain = indexing.classify_files(files), network.classify_files(files)
    assert all(p.indexed and p.error is None for p in indexed)
    assert sum(p.cell is not None and p.cell.m20 >= 20 for p in indexed) >= 6
    for before, after in zip(plain, indexed):
        cell, evidence = best_cell(pattern_peaks(after.pattern), after.pattern.wavelength or 1.54184)
        assert after.cell == cell and after.absences == evidence
        np.testing.assert_allclose(after.probabilities, rerank(
            before.probabilities, cell, evidence, indexing.metadata.classes), atol=1e-6)


def test_probabilities_are_reweighted_to_real_frequencies(classifier, tmp_path):
    from core.prior import adjust_for_prior

    assert classifier.adjust_prior and len(classifier.metadata.training_prior) == 230
    raw = Classifier(classifier.model, classifier.metadata, adjust_prior=False)
    assert not raw.adjust_prior
    inputs, _ = classifier.inputs([read_pattern(write_xy(tmp_path / "a.xy"))])
    raw_probabilities = raw.predict_inputs(inputs)
    adjusted = classifier.predict_inputs(inputs)
    assert np.allclose(raw_probabilities, np.asarray(classifier.model.predict_on_batch(inputs)), atol=1e-6)
    assert np.allclose(adjusted, adjust_for_prior(raw_probabilities,
                                                  np.asarray(classifier.metadata.training_prior)))
    assert not np.allclose(adjusted, raw_probabilities)


def test_models_without_a_training_prior_are_not_reweighted(padded_classifier):
    assert padded_classifier.metadata.training_prior == [] and not padded_classifier.adjust_prior


def test_index_reweights_towards_the_lattice_and_absences_of_a_convincing_cell(classifier, tmp_path):
    from core.absences import absence_weights, group_evidence
    from core.indexing import RERANK_OTHER, RERANK_SAME_FAMILY, index_pattern
    from core.peaks import pattern_peaks
    from core.simulation import simulate
    from core.symmetry import bravais_lattice_of

    salt = simulate(Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                              [[0, 0, 0], [0.5, 0.5, 0.5]]))
    path = write_xy(tmp_path / "nacl.xy", [(t, 10.0 * i) for t, i in
                                           zip(salt.two_theta, salt.intensity) if i >= 1])
    plain, = classifier.classify_files([path], index=False)
    indexed, = classifier.classify_files([path])  # indexed by default
    check_prediction(indexed)
    assert not plain.indexed and plain.cell is None and "cell" not in plain.to_json()
    expected = index_pattern(pattern_peaks(read_pattern(path)))[0]
    assert indexed.cell == expected and expected.bravais_lattice == "cF"
    assert expected.m20 >= RERANK_M20
    lattice = np.array([1.0 if bravais_lattice_of(n) == "cF" else
                        RERANK_SAME_FAMILY if n >= 195 else RERANK_OTHER for n in range(1, 231)])
    absences = absence_weights(group_evidence(expected), range(1, 231))
    # Rock salt's 200 line is absent in Fd-3m (d glide), so Fd-3m loses to Fm-3m.
    assert absences[227 - 1] < absences[225 - 1] == absences.max()
    weights = lattice * absences
    np.testing.assert_allclose(indexed.probabilities,
                               plain.probabilities * weights / (plain.probabilities * weights).sum())
    assert indexed.to_json()["cell"] == {"bravais_lattice": "cF", "cell": [round(v, 5) for v in expected.cell],
                                         "m20": round(expected.m20, 2), "unindexed": 0, "used": True}


def test_index_leaves_the_ranking_alone_without_a_convincing_cell(classifier, tmp_path):
    path = write_xy(tmp_path / "si.xy")  # five lines: too few to index
    plain, = classifier.classify_files([path], index=False)
    indexed, = classifier.classify_files([path])
    assert not plain.indexed and indexed.indexed and indexed.cell is None and indexed.to_json()["cell"] is None
    np.testing.assert_allclose(indexed.probabilities, plain.probabilities)
