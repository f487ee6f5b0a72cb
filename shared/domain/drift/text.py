"""Evidently's drift test for text columns, and the pass that gathers their values.

DataDriftPreset tests a text column (evidently/core/datasets.py `infer_column_type`: an object column whose
first and last values present are strings and whose distinct values outnumber half its values) with text-content
drift (legacy/calculations/stattests/text_content_drift*.py, legacy/utils/data_drift_utils.py): a domain
classifier, TF-IDF words and a linear model, learns to tell reference texts from current ones on a seeded half
of both; its ROC AUC on the other half is the score. With a reference of more than 1000 values the column
drifts when the AUC exceeds 0.55; otherwise when it exceeds the 95th percentile of the AUCs of 1000 seeded
random classifiers on the same half. Every step is seeded, so the same texts in the same order give the same
score: `text_drift` repeats those scikit-learn calls with those parameters.

The classifier needs every text at once. Up to TEXT_BYTES of text per column (both data sets) the values are
held and the verdict is Evidently's own; beyond, the test runs on a uniform sample of TEXT_SAMPLE values of each
data set (in their order) and the verdict says so: Evidently would have used every row.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.domain.drift.accumulators import RowSample
from shared.domain.drift.sources import ChunkSource

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TEXT_BYTES = 48 * 2**20  # text held per column (both data sets, counted as characters + 56 bytes a value)
TEXT_SAMPLE = 20_000  # values per data set tested when a column holds more text than that
SMALL_REFERENCE = 1000  # Evidently's switch from the percentile test to the absolute one
ABSOLUTE_THRESHOLD = 0.55
PERCENTILE_THRESHOLD = 0.95
RANDOM_CLASSIFIERS = 1000


@dataclass
class Texts:
    """One column's values present in both data sets, whole or sampled."""

    reference: list[pd.Series] = field(default_factory=list)
    current: list[pd.Series] = field(default_factory=list)
    held: int = 0  # bytes held
    whole: bool = True  # False: beyond TEXT_BYTES, the samples are used
    samples: tuple[RowSample, RowSample] | None = None

    def series(self) -> tuple[pd.Series, pd.Series]:
        import pandas as pd

        if self.whole:
            return tuple(_joined(parts) for parts in (self.reference, self.current))  # type: ignore[return-value]
        assert self.samples is not None
        frames = [sample.frame for sample in self.samples]
        return tuple(  # type: ignore[return-value]
            pd.Series([], dtype=object) if f is None else f.iloc[:, 0].reset_index(drop=True) for f in frames
        )


def _joined(parts: list[pd.Series]) -> pd.Series:
    import pandas as pd

    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=object)


def gather(
    reference: ChunkSource, current: ChunkSource, columns: Sequence[str], seed: int
) -> dict[str, Texts]:
    """One pass over each source: the columns' values present, whole while they fit TEXT_BYTES, and always a
    uniform sample of each data set in case they do not."""
    texts = {
        name: Texts(samples=(RowSample(TEXT_SAMPLE, seed), RowSample(TEXT_SAMPLE, seed + 1)))
        for name in columns
    }
    for side, source in enumerate((reference, current)):
        for chunk in source.chunks(list(columns)):
            for name in chunk.columns:
                if name not in texts:
                    continue
                series = chunk[name]
                present = series[series.notna()]
                if present.empty:
                    continue
                held = texts[name]
                assert held.samples is not None
                held.samples[side].add(present.to_frame())
                if not held.whole:
                    continue
                held.held += _bytes(present)
                if held.held > TEXT_BYTES:
                    held.whole, held.reference, held.current = False, [], []
                    continue
                (held.reference if side == 0 else held.current).append(present)
    return texts


def _bytes(values: pd.Series) -> int:
    try:
        characters = int(values.str.len().fillna(0).sum())
    except AttributeError:  # no strings at all: the test will refuse them
        characters = 0
    return characters + 56 * len(values)


def text_drift(reference: pd.Series, current: pd.Series, reference_values: int) -> tuple[str, float, bool]:
    """Evidently's text-content drift on these values: (stattest, ROC AUC, drifted). `reference_values` is the
    size of the whole reference, which picks the test. Raises what scikit-learn raises on texts it cannot
    learn from (which aborts Evidently's preset too)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    domain = pd.concat(
        [pd.DataFrame({"text": reference, "target": 0}), pd.DataFrame({"text": current, "target": 1})]
    )
    x_train, x_test, y_train, y_test = train_test_split(
        domain["text"], domain["target"], test_size=0.5, random_state=42, shuffle=True
    )
    pipeline = Pipeline(
        [
            ("vectorization", TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english")),
            (
                "classification",
                SGDClassifier(
                    alpha=0.0001, max_iter=50, penalty="l1", loss="modified_huber", random_state=42
                ),
            ),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: Evidently's settings, Evidently's warnings
        pipeline.fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, pipeline.predict_proba(x_test)[:, 1]))
    if reference_values > SMALL_REFERENCE:
        return "abs_text_content_drift", auc, auc > ABSOLUTE_THRESHOLD
    return (
        "perc_text_content_drift",
        auc,
        auc > _random_percentile(y_test.to_numpy(), 1 - PERCENTILE_THRESHOLD),
    )


def _random_percentile(y_test: np.ndarray, p_value: float) -> float:
    """`roc_auc_random_classifier_percentile`: the AUCs of random scores, each drawn after seeding numpy's
    global generator with one of 1000 seeds drawn after seeding it with 42. A RandomState seeded alike draws
    the same numbers without touching the global generator."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    seeds = np.random.RandomState(42).randint(0, RANDOM_CLASSIFIERS * 10, size=RANDOM_CLASSIFIERS)
    values = [roc_auc_score(y_test, np.random.RandomState(s).rand(len(y_test))) for s in seeds]
    return float(np.percentile(values, 100 * (1 - p_value)))
