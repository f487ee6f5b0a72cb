"""The drift job's champion scorer on a real MLflow model folder, saved as the training job saves one: it
predicts on the model's own input columns (extra served columns are dropped) and loads the model once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.drift_job.__main__ import scorer
from shared.training.model import build_pipeline, save_model


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, object]:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    features = pd.DataFrame({"dose": rng.normal(0, 1, 200), "ward": rng.choice(["a", "b"], 200)})
    target = 2 * features["dose"] + (features["ward"] == "b")
    model = build_pipeline(LinearRegression(), features).fit(features, target)
    folder = tmp_path_factory.mktemp("champion") / "model"
    save_model(model, folder, features)
    return folder, features, model


def test_the_champion_scores_served_rows_on_its_own_columns(champion) -> None:
    folder, features, model = champion
    served = features.head(20).assign(request_id=range(20))  # what the capture adds is not an input

    predictions = scorer(str(folder))(served)

    assert predictions == pytest.approx(model.predict(features.head(20)).tolist())
    assert all(isinstance(value, float) for value in predictions)


def test_the_model_is_loaded_once_for_every_chunk(champion, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.training.model as model_module

    folder, features, _ = champion
    loads = []
    real = model_module.load_model
    monkeypatch.setattr(model_module, "load_model", lambda path: loads.append(path) or real(path))
    score = scorer(str(folder))

    for chunk in (features.head(5), features.tail(5)):
        assert len(score(chunk)) == 5

    assert loads == [folder]


def test_no_champion_folder_means_no_prediction_drift() -> None:
    assert scorer("") is None
