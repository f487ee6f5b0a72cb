"""Data drift: the verdicts of Evidently's `DataDriftPreset` (default settings) on the full data, computed chunk
by chunk in bounded memory, and Evidently's HTML report drawn on a bounded sample but carrying those verdicts.

Why not simply run the preset: it needs both data sets in memory as pandas frames and runs every column's test
more than once (ValueDrift, DriftedColumnsCount and the rendered table each do); on 1,000,000 rows x 10 columns
that is over a minute and about 1 GB, more than a Function should spend on a timer.

How the verdicts stay Evidently's. The preset's defaults (`_get_default_stattest` in
evidently/legacy/calculations/stattests/registry.py) pick a test per column from the *current* data's inferred
type (evidently/core/datasets.py `infer_column_type`: floats are numerical, ints with at most 10 distinct values
categorical, object columns with more distinct values than half their rows text) and from the values left after
dropping NaN and +-inf:
- reference of at most 1000 values: K-S (drift when p <= 0.05) for numerical columns with more than 5 distinct
  values; chi-square (p < 0.05) for 3-5 distinct numerical values or categorical columns with more than 2
  categories; Z-test (p < 0.05) for two or fewer;
- larger reference: normed Wasserstein distance (>= 0.1) for numerical columns with more than 5 distinct values,
  Jensen-Shannon distance over value counts (>= 0.1) for the rest;
- the data set drifts when the share of drifted columns is at least `drift_share`.
All tests but Wasserstein are functions of value counts (K-S: of counts against the at most 1000 reference
values), which we accumulate exactly and hand to the same scipy functions in the same order. The normed
Wasserstein distance needs the reference's standard deviation (streaming moments) and the integral of
|F_ref - F_cur|: histograms with per-bin counts and value sums give that integral exactly on every bin where
F_ref - F_cur keeps its sign and tight bounds on the others. When the bounds straddle the threshold, the
uncertain bins are split and counted again; only a distance within 1e-9 of the threshold, where floating point
decides, loads that one column whole and computes it as Evidently does (the same numpy and scipy calls).

Where we differ, on purpose: columns whose type differs between the data sets, or that one of them lacks, are
schema drift and get no test (Evidently would fail or compare apples with strings); text columns (Evidently's
text-content drift trains a classifier) and categorical columns with more than MAX_CATEGORIES values are listed
as not checked, and the drift share is over the columns tested.

The package, top down: `decision` (`check`: the verdicts, schema drift, refinement), `profiles` (what one pass
learns about each column), `stattests` (Evidently's tests on counts and histograms), `sources` (where the rows come
from) and `report` (`render_html`). Every module imports only the standard library at import time: the function
app imports this package, and a cold start must not pay for numpy, pandas, scipy or Evidently.
"""

from shared.domain.drift.decision import ColumnDrift, DriftResult, SchemaDrift, check
from shared.domain.drift.report import render_html
from shared.domain.drift.rows import ChainSource, RecordSource
from shared.domain.drift.sources import (
    DEFAULT_CHUNK_ROWS,
    ChunkSource,
    FrameSource,
    TablePart,
    TableSource,
    count_rows,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ChainSource",
    "ChunkSource",
    "ColumnDrift",
    "DriftResult",
    "FrameSource",
    "RecordSource",
    "SchemaDrift",
    "TablePart",
    "TableSource",
    "check",
    "count_rows",
    "render_html",
]
