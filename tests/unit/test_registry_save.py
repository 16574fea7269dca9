"""Models saved from a block's template (``registry.save_pyfunc_like``): the MLmodel is the one
MLflow would write for the model (its own uuid, size, time and input example), they load and
predict like a model saved by MLflow, and a changed template folder is read again."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.models import Model

from manymodels import registry
from manymodels.config import load_settings
from manymodels.data.partition import split_partitions
from manymodels.features import build_features, feature_columns
from manymodels.models import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.training import feature_settings

OWN = ("model_uuid", "utc_time_created", "model_size_bytes")


@pytest.fixture(scope="module")
def _packed(_conditioned) -> list[tuple[PackedModel, pd.DataFrame]]:
    settings = load_settings("pipelines", "dev")
    fs = feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = ["week", *categorical, *numeric]
    out = []
    for pid, frame in list(split_partitions(_conditioned[0], ("store_id",)).items())[:3]:
        known = build_features(frame, **fs).dropna(subset=["units"])
        model = HistoricalAverageBaseline().fit(known[columns], known["units"])
        out.append((PackedModel(model, "baseline", pid, fs, columns), known[columns].head(2)))
    return out


def test_a_model_made_from_the_template_is_what_mlflow_would_write(_packed, tmp_path):
    (first, first_example), *rest = _packed
    template = registry.save_pyfunc(first, tmp_path / "template", first_example)
    want = yaml.safe_load((template / "MLmodel").read_text())
    uuids = {want["model_uuid"]}
    for packed, example in rest:
        folder = registry.save_pyfunc_like(template, packed, tmp_path / packed.partition, example)
        text = (folder / "MLmodel").read_text()
        meta = yaml.safe_load(text)
        assert Model.load(str(folder / "MLmodel")).to_yaml() == text  # as Model.save writes it
        assert {k: v for k, v in meta.items() if k not in OWN} == {
            k: v for k, v in want.items() if k not in OWN
        }
        files = sum(
            f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "MLmodel"
        )
        assert meta["model_size_bytes"] == files
        uuids.add(meta["model_uuid"])
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            p.name for p in template.iterdir()
        )
        got = mlflow.pyfunc.load_model(str(folder)).predict(example)
        np.testing.assert_array_equal(np.asarray(got).ravel(), packed.predict(example))
        saved = pd.read_json(folder / "input_example.json", orient="split")
        assert list(saved.columns) == list(example.columns) and len(saved) == len(example)
    assert len(uuids) == len(_packed)


def test_a_rewritten_template_is_read_again(_packed, tmp_path):
    (first, example), (second, second_example), _ = _packed
    template = registry.save_pyfunc(first, tmp_path / "template", example)
    registry.save_pyfunc_like(template, second, tmp_path / "a", second_example)
    text = (template / "MLmodel").read_text()
    (template / "MLmodel").write_text(text.replace("mlflow_version:", "mlflow_version: '0'\nx:"))
    import os  # noqa: PLC0415

    stat = (template / "MLmodel").stat()
    os.utime(template / "MLmodel", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    registry.save_pyfunc_like(template, second, tmp_path / "b", second_example)
    assert yaml.safe_load((tmp_path / "b" / "MLmodel").read_text())["mlflow_version"] == "0"


def test_render_refuses_a_template_without_the_key():
    like = registry._Template(model=None, files=(), example_info=None, text="a: 1\n")
    with pytest.raises(ValueError, match="model_uuid"):
        like.render({"model_uuid": "abc"})


def test_a_packed_model_is_written_by_the_standard_pickler_and_joblib_reads_it(_packed, tmp_path):
    import pickle  # noqa: PLC0415

    import joblib  # noqa: PLC0415

    packed, example = _packed[0]
    path = packed.save(str(tmp_path / "packed.joblib"))
    with open(path, "rb") as f:  # a plain pickle, not joblib's own format
        plain = pickle.load(f)  # noqa: S301
    read = joblib.load(path)  # what every reader of packed.joblib calls
    for loaded in (plain, read):
        assert isinstance(loaded, PackedModel)
        np.testing.assert_array_equal(loaded.predict(example), packed.predict(example))
        pd.testing.assert_series_equal(
            loaded.estimator.seasonal_means_, packed.estimator.seasonal_means_
        )
    old = tmp_path / "old.joblib"  # a model saved before, by joblib.dump
    joblib.dump(packed, old)
    np.testing.assert_array_equal(joblib.load(old).predict(example), packed.predict(example))


def test_models_sharing_an_example_write_its_files_once_and_the_same(_packed, tmp_path):
    (first, first_example), (second, example), *_ = _packed
    template = registry.save_pyfunc(first, tmp_path / "template", first_example)
    alone = registry.save_pyfunc_like(template, second, tmp_path / "alone", example)
    shared: dict = {}
    made = [
        registry.save_pyfunc_like(template, second, tmp_path / f"shared{i}", example, shared)
        for i in range(2)
    ]
    assert shared["folder"] == made[0]
    for folder in made:
        for name in ("input_example.json", "serving_input_example.json"):
            assert (folder / name).read_bytes() == (alone / name).read_bytes()
        meta = yaml.safe_load((folder / "MLmodel").read_text())
        want = yaml.safe_load((alone / "MLmodel").read_text())
        assert {k: v for k, v in meta.items() if k not in OWN} == {
            k: v for k, v in want.items() if k not in OWN
        }
        got = mlflow.pyfunc.load_model(str(folder)).predict(example)
        np.testing.assert_array_equal(np.asarray(got).ravel(), second.predict(example))


def _mlflow_example(example: pd.DataFrame, folder) -> tuple[dict, dict]:
    from mlflow.models.utils import _save_example  # noqa: PLC0415

    folder.mkdir()
    model = Model()
    _save_example(model, example, str(folder))
    return model.saved_input_example_info, {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(
    "example",
    [
        pd.DataFrame(
            {
                "week": pd.to_datetime(
                    ["2024-01-01", "2023-12-31", "2024-01-15 12:30:00.000001"], format="ISO8601"
                ),
                "store_id": pd.Series(["S1", "S\u00e92", 'a "b"'], dtype="str"),
                "plain": pd.Series(["x", "y", "z"], dtype=object),
                "week_of_year": np.array([1, 2, 53], dtype="int64"),
                "flag": [True, False, True],
                "lag_4": [0.1, 1e-7, -2.5e-300],
                "big": [1e300, np.inf, 3.0],
                "small": np.array([0.1, 2.0, -0.0], dtype="float32"),
            }
        ),
        pd.DataFrame({"store_id": pd.Series(["S1", None], dtype="str"), "x": [1.0, 2.0]}),
        pd.DataFrame({"x": [1.0, np.nan], "when": pd.to_datetime(["2024-01-01", None])}),
        pd.DataFrame({"kind": pd.Categorical(["a", "b"]), "x": [1.0, 2.0]}),
        pd.DataFrame({"when": pd.to_datetime(["2024-01-01"]).tz_localize("UTC"), "x": [1.0]}),
        pd.DataFrame([[1.0, 2.0]]),  # unnamed columns
    ],
    ids=["plain-columns", "missing-text", "missing-numbers", "categorical", "tz-aware", "unnamed"],
)
def test_the_input_example_files_are_the_ones_mlflow_writes(example, tmp_path):
    want_info, want_files = _mlflow_example(example, tmp_path / "mlflow")
    (tmp_path / "ours").mkdir()
    model = Model()
    registry._save_example(model, example, tmp_path / "ours")
    assert model.saved_input_example_info == want_info
    assert {p.name: p.read_bytes() for p in (tmp_path / "ours").iterdir()} == want_files


def test_the_real_example_is_written_without_mlflow_and_as_mlflow_does(
    _packed, tmp_path, monkeypatch
):
    import mlflow.models.utils  # noqa: PLC0415

    _, example = _packed[0]
    want_info, want_files = _mlflow_example(example, tmp_path / "mlflow")
    monkeypatch.setattr(mlflow.models.utils, "_save_example", None)  # not called
    (tmp_path / "ours").mkdir()
    model = Model()
    registry._save_example(model, example, tmp_path / "ours")
    assert model.saved_input_example_info == want_info
    assert {p.name: p.read_bytes() for p in (tmp_path / "ours").iterdir()} == want_files


def test_files_are_linked_else_copied(tmp_path, monkeypatch):
    source = tmp_path / "a.txt"
    source.write_text("same bytes")
    registry._link(source, tmp_path / "linked.txt")
    assert (tmp_path / "linked.txt").read_text() == "same bytes"
    assert (tmp_path / "linked.txt").stat().st_ino == source.stat().st_ino

    def refuse(*_args):
        raise OSError("no links here")

    monkeypatch.setattr(registry.os, "link", refuse)
    registry._link(source, tmp_path / "copied.txt")
    assert (tmp_path / "copied.txt").read_text() == "same bytes"
    assert (tmp_path / "copied.txt").stat().st_ino != source.stat().st_ino
