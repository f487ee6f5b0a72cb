"""Data drift: the verdicts of Evidently's `DataDriftPreset` (default settings) on the full data, computed chunk
by chunk in bounded memory, and Evidently's HTML report drawn on a bounded sample but carrying those verdicts.

Why not simply run the preset: it needs both data sets in memory as pandas frames and runs every column's test
more than once (ValueDrift, DriftedColumnsCount and the rendered table each do); on 1,000,000 rows x 10 columns
that is over a minute and about 1 GB, more than a Function should spend on a timer.

What "the full data" is: each data set's tables read whole by pandas (`pd.read_csv`, `pd.read_parquet`) and
concatenated (`pd.concat`), or the frame given. Its dtypes decide Evidently's types, so the check derives each
column's dtype as that concatenation would (`profiles`), reads CSV in chunks that start where pandas' parser
starts its dtype blocks (a column mixing numbers and strings holds the same values), and a window that starts
inside a table keeps that table's dtypes (`sources`).

How the verdicts stay Evidently's (`rules` says which Evidently code each rule comes from). The preset picks a
test per column from the *current* data's inferred type (evidently/core/datasets.py `infer_column_type`: floats
are numerical, ints with at most 10 distinct values categorical, object columns whose ends are strings text when
more than half their values are distinct) and from the values left after dropping NaN and +-inf
(`_get_default_stattest` in evidently/legacy/calculations/stattests/registry.py):
- text: text-content drift, a seeded classifier on the words (`text`), AUC > 0.55 with a reference of over 1000
  values, else above the 95th percentile of 1000 seeded random classifiers;
- reference of at most 1000 values: K-S (drift when p <= 0.05) for numerical columns with more than 5 distinct
  values; chi-square (p < 0.05) for 3-5 distinct numerical values or categorical columns with more than 2
  categories; Z-test (p < 0.05) for two or fewer;
- larger reference: normed Wasserstein distance (>= 0.1) for numerical columns with more than 5 distinct values,
  Jensen-Shannon distance over value counts (>= 0.1) for the rest.
The data set drifts when the share of drifted columns is at least `drift_share`, but that share is Evidently's
data-set count's, a second computation: it keeps +-inf on a side without missing values (other data, so other
scores, even another test) and leaves out numerical columns whose reference is boolean. Each column carries both
verdicts where they differ (`ColumnDrift.count_verdict`, `.counted`).

All tests but Wasserstein and text are functions of value counts (K-S: of the at most 1000 reference values and
counts against them), which we accumulate exactly and hand to the same scipy functions in the same order;
beyond MAX_CATEGORIES distinct values the values are held or counted in parts (`categories`). The normed
Wasserstein distance needs the reference's standard deviation (streaming moments, rounded to float32 as pandas
does for a float32 column) and the integral of |F_ref - F_cur|: histograms give it exactly where F_ref - F_cur
keeps its sign, the tails' values exactly on the outer bins, bounds on the rest (`wasserstein`). When the bounds
straddle the threshold, a refinement pass collects the uncertain bins' values (or splits them); only a distance
within 1e-9 of the threshold, where floating point decides, loads that one column whole and computes it as
Evidently does. A verdict is always exact; a Wasserstein score whose bounds do not pin it is shown with them
(`ColumnDrift.bounds`), unless `check(exact_scores=True)` refines it too. Text columns are tested exactly up to
TEXT_BYTES of text per column, beyond on uniform samples, and say so (`ColumnDrift.sample`).

A column Evidently cannot test (it would raise, aborting its whole report: values it cannot order or count, a
numerical column whose reference holds strings, no values) is listed in `not_checked` with the reason, and the
others are still checked; columns one data set lacks are schema drift. A column whose type changed is reported
as schema drift and tested as Evidently tests it, by the current data's type.

The package, top down: `decision` (`check`), `results`, `rules`, `text`, `categories`, `wasserstein`, `profiles`
(what one pass learns about each column), `accumulators`, `stattests` (Evidently's tests on what is held),
`sources` (where the rows come from) and `report` (`render_html`). Every module imports only the standard library
at import time: the function app imports this package, and a cold start must not pay for numpy, pandas, scipy,
scikit-learn or Evidently."""

from shared.domain.drift.decision import check
from shared.domain.drift.report import render_html
from shared.domain.drift.results import ColumnDrift, DriftResult, SchemaDrift
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
