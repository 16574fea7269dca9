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
