"""The challenger's pipeline, its MLflow model folder, and loading the champion's."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from shared.training.errors import TrainingInputError

# The packages a model needs at scoring time. Listed explicitly, because letting MLflow infer them costs ~9 s.
_RUNTIME_PACKAGES = ("scikit-learn", "pandas", "numpy", "mlflow", "cloudpickle")
_SIGNATURE_ROWS = 5


def build_estimator(dotted_path: str, params: dict[str, Any], seed: int) -> Any:
    module_name, _, class_name = dotted_path.rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise TrainingInputError(f"estimator {dotted_path!r} cannot be imported") from None
    arguments = dict(params)
    # Explicit estimator_params win; otherwise the run's seed makes the estimator deterministic.
    if "random_state" not in arguments and _accepts(estimator_class, "random_state"):
        arguments["random_state"] = seed
    try:
        return estimator_class(**arguments)
    except TypeError as error:
        raise TrainingInputError(f"estimator {dotted_path} rejects estimator_params: {error}") from None


def build_pipeline(estimator: Any, features: pd.DataFrame) -> Any:
    """Impute + scale numeric columns, impute + one-hot encode the others, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    steps = []
    if numeric:
        steps.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50, sparse_output=False)
        steps.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("encode", encoder),
                    ]
                ),
                categorical,
            )
        )
    # Dense output: some estimators (HistGradientBoosting*) refuse sparse input.
    preprocess = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _RUNTIME_PACKAGES]


def save_model(model: Any, path: Path, sample: pd.DataFrame) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    rows = sample.head(_SIGNATURE_ROWS)
    signature = infer_signature(rows, model.predict(rows))
    if path.exists():
        shutil.rmtree(path)  # a re-run of the same job replaces its own output
    # cloudpickle, not MLflow 3's default skops: skops refuses HistGradientBoosting* (and other types) unless
    # each is listed as trusted, and MLflow 2.x cannot load skops models at all.
    with _quiet("mlflow.sklearn"):
        mlflow.sklearn.save_model(
            model,
            str(path),
            signature=signature,
            pip_requirements=pip_requirements(),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )


def load_model(path: Path) -> tuple[Any, list[str] | None]:
    """A model folder's model (scikit-learn natively, else pyfunc) and the input columns of its signature (None
    when it has none)."""
    from mlflow.models import Model

    if not (path / "MLmodel").is_file():
        raise TrainingInputError(f"{path} is not an MLflow model folder (no MLmodel file)")
    meta = Model.load(str(path))
    columns = None
    if meta.signature is not None and meta.signature.inputs is not None:
        names = meta.signature.inputs.input_names()
        columns = [str(name) for name in names] if names and all(isinstance(n, str) for n in names) else None
    if "sklearn" in meta.flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(path)), columns
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path)), columns


def _accepts(estimator_class: type, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(estimator_class).parameters
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
