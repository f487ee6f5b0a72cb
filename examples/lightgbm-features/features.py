"""The project's feature engineering: a scikit-learn transformer that adds derived columns to the raw ones.

It is the first step of the saved model's pipeline, so the endpoint and the platform's evaluation apply it to
the raw columns they send, exactly as training did; what it learns (bin edges, categories) it learns from the
training rows only, in `fit`. Edit RATIOS and BINS for your data: a derived column whose source columns are not
in the data is left out, so the same file runs on any table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# name -> (numerator, denominator): the quotient is a column (NaN where the denominator is 0).
RATIOS: dict[str, tuple[str, str]] = {
    "bmi_per_bp": (
        "bmi",
        "bp",
    ),  # scikit-learn's diabetes data (its columns are centred: a split, not a dose)
    "tc_per_hdl": ("s1", "s3"),
    "area_growth": ("worst area", "mean area"),  # its breast cancer data: the largest cells over the mean
}
# name -> (column, bins): the column's quantile bin on the training rows (0 .. bins-1, -1 where missing).
BINS: dict[str, tuple[str, int]] = {
    "age_band": ("age", 4),
    "radius_band": ("mean radius", 5),
}


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Raw columns in, raw plus derived columns out, as a DataFrame LightGBM reads natively (text columns
    become pandas categories with the categories seen in training, so a code means one value everywhere)."""

    def fit(self, frame: pd.DataFrame, y: object = None) -> DerivedFeatures:
        self.columns_ = list(frame.columns)
        self.ratios_ = {n: pair for n, pair in RATIOS.items() if set(pair) <= set(frame.columns)}
        self.edges_ = {}
        for name, (column, bins) in BINS.items():
            if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
                inner = np.nanquantile(frame[column].astype(float), np.linspace(0, 1, bins + 1)[1:-1])
                self.edges_[name] = (column, np.unique(inner))
        self.categories_ = {
            c: sorted(frame[c].dropna().astype(str).unique())
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c])
        }
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[self.columns_].copy()
        for column, categories in self.categories_.items():
            values = out[column].astype("string")
            out[column] = pd.Categorical(values, categories=categories)
        for name, (numerator, denominator) in self.ratios_.items():
            below = out[denominator].astype(float)
            out[name] = out[numerator].astype(float) / below.where(below != 0)
        for name, (column, edges) in self.edges_.items():
            values = out[column].astype(float)
            out[name] = np.where(values.isna(), -1, np.searchsorted(edges, values, side="right"))
        out["missing_count"] = frame[self.columns_].isna().sum(axis=1).astype(int)
        return out
