"""The drift check, moved into a package; the next commit splits `profiles` into its parts."""

from shared.domain.drift.profiles import *  # noqa: F403
from shared.domain.drift.profiles import _bounds, _ColumnProfile, _Histogram, _wasserstein_exact  # noqa: F401
