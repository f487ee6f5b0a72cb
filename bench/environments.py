"""The first build of a training project's environment against a cached hit.

A requirements file with one small local package (written into a temporary folder and installed by path, so
no package index is needed): the first `ensure_environment` builds the environment (venv, the project's view,
pip install, pip freeze); the next ones find its marker. Prints both times and their ratio.
Usage: python bench/environments.py [--hits 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from shared.adapters.local.environments import ensure_environment
    from shared.testing.packages import local_package

    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=20, help="cached calls to time after the build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envs-bench-") as folder:
        home, code = Path(folder) / "home", Path(folder) / "code"
        local_package(code / "features", "bench-features")
        (code / "requirements.txt").write_text("./features\n")

        started = time.perf_counter()
        python = ensure_environment(home, code, "requirements.txt", timeout=600)
        build = time.perf_counter() - started

        hits = []
        for _ in range(max(args.hits, 1)):
            started = time.perf_counter()
            ensure_environment(home, code, "requirements.txt", timeout=600)
            hits.append(time.perf_counter() - started)
        size = sum(
            p.stat().st_size for p in python.parent.parent.rglob("*") if p.is_file() and not p.is_symlink()
        )

    hit = statistics.median(hits)
    print(f"first build   {build:8.3f} s   (environment on disk: {size / 1024:.0f} KiB)")
    print(f"cached hit    {hit * 1000:8.3f} ms  (median of {len(hits)}, max {max(hits) * 1000:.3f} ms)")
    print(f"ratio         {build / hit:8.0f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
