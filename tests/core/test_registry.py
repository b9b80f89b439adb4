"""Saved model folders: save, load (safe mode), list, rename, delete, zip, names."""

from __future__ import annotations

import io
import json
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest

from core import registry
from core.paths import bundled_model_path, models_dir
from core.registry import ModelError, ModelMetadata


def tiny_keras(input_length: int = 12) -> keras.Model:
    inputs = keras.Input((input_length,), name="pattern")
    x = keras.layers.Dense(4, activation="relu")(inputs)
    outputs = keras.layers.Dense(230, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def save_tiny(name: str, **metadata) -> keras.Model:
    model = tiny_keras()
    meta = ModelMetadata(name=name, kind="baseline_ann", input_type="padded", padded_length=6,
                         metrics={"top1": 0.5}, **metadata)
    history = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.5]})
    registry.save_model(model, meta, history, {"metrics": {"top1": 0.5}, "true": np.array([1, 2])})
    return model


def hidden_entries() -> list[str]:
    return [p.name for p in models_dir().iterdir() if p.name.startswith(".")]


def test_save_and_load_round_trip():
    model = save_tiny("reg_roundtrip", description="a test model")
    folder = models_dir() / "reg_roundtrip"
    assert {p.name for p in folder.iterdir()} == {"model.keras", "metadata.json", "history.csv",
                                                 "evaluation.json"}
    loaded, meta = registry.load_model("reg_roundtrip")
    x = np.random.default_rng(0).random((3, 12)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)
    assert meta.name == "reg_roundtrip" and meta.description == "a test model"
    assert meta.input_type == "padded" and meta.input_length == 12
    assert meta.classes == list(range(1, 231))
    assert registry.load_history("reg_roundtrip")["loss"].tolist() == [2.0, 1.5]
    assert registry.load_evaluation("reg_roundtrip") == {"metrics": {"top1": 0.5}, "true": [1, 2]}
    # Loading by folder path works too.
    _, by_path = registry.load_model(folder)
    assert by_path.name == "reg_roundtrip"
    assert hidden_entries() == []  # no staging folders left behind


def test_save_refuses_to_overwrite_unless_asked():
    save_tiny("reg_twice")
    with pytest.raises(ModelError, match="already exists"):
        save_tiny("reg_twice")
    meta = registry.read_metadata(models_dir() / "reg_twice")
    meta.description = "second version"
    registry.save_model(tiny_keras(), meta, replace=True)
    assert registry.read_metadata(models_dir() / "reg_twice").description == "second version"
    # Replaced without history/evaluation: those files are gone, not stale.
    assert registry.load_history("reg_twice").empty
    assert registry.load_evaluation("reg_twice") == {}
    assert hidden_entries() == []


def test_compiled_model_is_saved_without_optimizer_state():
    model = tiny_keras()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(np.ones((4, 12), np.float32), keras.utils.to_categorical([0, 1, 2, 3], 230), verbose=0)
    registry.save_model(model, ModelMetadata(name="reg_compiled", kind="baseline_ann",
                                             input_type="padded", padded_length=6))
    with zipfile.ZipFile(models_dir() / "reg_compiled" / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert not config.get("compile_config")
    loaded, _ = registry.load_model("reg_compiled")
    x = np.random.default_rng(1).random((2, 12)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_metadata_defaults_and_dict_round_trip():
    meta = ModelMetadata(name="m", kind="resnet1d")
    assert meta.input_type == "grid" and meta.status == "done"
    assert meta.two_theta_grid.size == 2126 and meta.input_length == 2126
    data = meta.to_dict()
    data["future_field"] = "ignored"
    assert ModelMetadata.from_dict(data) == meta
    padded = ModelMetadata(name="p", kind="baseline_ann", input_type="padded", padded_length=100)
    assert padded.input_length == 200


def test_numpy_values_in_metadata_are_written(tmp_path):
    meta = ModelMetadata(name="np", kind="x", metrics={"top1": np.float32(0.25), "n": np.int64(4)},
                         hyperparameters={"layers": np.array([1, 2])})
    registry.write_metadata(tmp_path, meta)
    back = registry.read_metadata(tmp_path)
    assert back.metrics == {"top1": 0.25, "n": 4}
    assert back.hyperparameters == {"layers": [1, 2]}


@pytest.mark.parametrize("name", ["../x", "", "a/b", ".", "..", ".hidden", "a\\b", "x" * 65,
                                  "with space", None, 5])
def test_invalid_names_rejected(name):
    with pytest.raises(ModelError, match="invalid model name"):
        registry.check_name(name)


def test_invalid_names_rejected_everywhere():
    with pytest.raises(ModelError):
        registry.save_model(tiny_keras(), ModelMetadata(name="../escape", kind="x"))
    with pytest.raises(ModelError):
        registry.delete_model("../x")
    with pytest.raises(ModelError):
        registry.model_path("a/b")
    assert not (models_dir().parent / "escape").exists()


@pytest.mark.parametrize("name", ["a", "model-1.v2", "Res_Net_3", "x" * 64])
def test_valid_names(name):
    assert registry.check_name(name) == name


def test_list_models_survives_corrupt_metadata():
    save_tiny("reg_listed")
    corrupt = models_dir() / "reg_corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.json").write_text("{not json")
    (models_dir() / "reg_no_metadata").mkdir()
    wrong_type = models_dir() / "reg_wrong_type"
    wrong_type.mkdir()
    (wrong_type / "metadata.json").write_text(json.dumps({"name": "reg_wrong_type"}))  # no kind
    models = registry.list_models()
    by_name = {m.name: m for m in models}
    assert models[0].name == "default"
    assert by_name["reg_listed"].status == "done"
    assert by_name["reg_corrupt"].status == "corrupt"
    assert "reg_corrupt" in by_name["reg_corrupt"].error
    assert by_name["reg_wrong_type"].status == "corrupt"
    assert "reg_no_metadata" not in by_name
    with pytest.raises(ModelError):
        registry.load_model("reg_corrupt")
    for name in ("reg_corrupt", "reg_wrong_type"):
        registry.delete_model(name)
    (models_dir() / "reg_no_metadata").rmdir()


def test_list_models_newest_first():
    save_tiny("reg_older", created="2000-01-01T00:00:00+00:00")
    save_tiny("reg_newer", created="2099-01-01T00:00:00+00:00")
    names = [m.name for m in registry.list_models()]
    assert names[0] == "default"
    assert names.index("reg_newer") < names.index("reg_older")
    assert names[1] == "reg_newer"


def test_rename():
    save_tiny("reg_old_name")
    registry.rename_model("reg_old_name", "reg_new_name")
    assert not (models_dir() / "reg_old_name").exists()
    _, meta = registry.load_model("reg_new_name")
    assert meta.name == "reg_new_name"
    save_tiny("reg_other")
    with pytest.raises(ModelError, match="already exists"):
        registry.rename_model("reg_new_name", "reg_other")
    with pytest.raises(ModelError, match="already exists"):
        registry.rename_model("reg_new_name", "default")
    with pytest.raises(ModelError, match="not found"):
        registry.rename_model("reg_missing", "reg_whatever")
    with pytest.raises(ModelError, match="protected"):
        registry.rename_model("default", "reg_stolen")
    with pytest.raises(ModelError, match="invalid model name"):
        registry.rename_model("reg_new_name", "../outside")
    assert (models_dir() / "reg_new_name").exists()


def test_delete_and_bundled_protection():
    save_tiny("reg_doomed")
    registry.delete_model("reg_doomed")
    assert not (models_dir() / "reg_doomed").exists()
    with pytest.raises(ModelError, match="not found"):
        registry.delete_model("reg_doomed")
    assert registry.is_protected("default") and not registry.is_protected("reg_other")
    with pytest.raises(ModelError, match="protected"):
        registry.delete_model("default")
    assert (bundled_model_path() / "model.keras").exists()
    assert registry.model_path("default") == bundled_model_path()
    assert registry.read_metadata(bundled_model_path()).classes == list(range(1, 231))


def test_zip_model():
    save_tiny("reg_zipped")
    data = registry.zip_model("reg_zipped")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names == ["reg_zipped/evaluation.json", "reg_zipped/history.csv",
                         "reg_zipped/metadata.json", "reg_zipped/model.keras"]
        assert json.loads(archive.read("reg_zipped/metadata.json"))["name"] == "reg_zipped"
        assert archive.read("reg_zipped/model.keras") == (models_dir() / "reg_zipped" / "model.keras").read_bytes()
    with pytest.raises(ModelError, match="not found"):
        registry.zip_model("reg_not_there")


def test_missing_and_damaged_model_files():
    with pytest.raises(ModelError, match="not found"):
        registry.load_model("reg_nothing_here")
    save_tiny("reg_damaged")
    (models_dir() / "reg_damaged" / "model.keras").write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelError, match="reg_damaged"):
        registry.load_model("reg_damaged")
    (models_dir() / "reg_damaged" / "evaluation.json").write_text("{broken")
    with pytest.raises(ModelError, match="evaluation"):
        registry.load_evaluation("reg_damaged")


def test_lambda_layer_is_refused():
    inputs = keras.Input((12,))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(230, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    folder = models_dir() / "reg_lambda"
    folder.mkdir()
    model.save(folder / "model.keras")
    registry.write_metadata(folder, ModelMetadata(name="reg_lambda", kind="baseline_ann",
                                                  input_type="padded", padded_length=6))
    with pytest.raises(ModelError, match="cannot be loaded safely"):
        registry.load_model("reg_lambda")
    # It is still listed (its metadata is fine), so the user can delete it.
    assert "reg_lambda" in {m.name for m in registry.list_models()}
    registry.delete_model("reg_lambda")


def test_training_augmentation_reads_the_recorded_ranges():
    from core.augmentation import Augmentation

    recorded = Augmentation(impurity_probability=0.6, impurity_fraction=(0.01, 0.15))
    meta = ModelMetadata(name="m", kind="resnet1d", augmentation=json.loads(json.dumps(
        recorded.to_dict())))  # as read back from metadata.json: tuples become lists
    assert meta.training_augmentation == recorded
    assert ModelMetadata(name="m", kind="resnet1d").training_augmentation == Augmentation()
