"""What the Function App's deployment installs: the closure of `requirements.txt` in a fresh virtual environment.

Flex Consumption's remote build installs `requirements.txt` on every deploy, so its size is the deploy's cost and
part of every cold start's disk. This creates a fresh virtual environment, installs `requirements.txt` into it
(from the package index pip is configured with), and prints its size and its distributions, the largest first;
then the same for the environment this script runs in (the development one: app, local mode, training and test
tools) as the baseline, and the ratio. Goal: the app's closure at most 400 MB.
Usage: python bench/app_closure.py [--requirements requirements.txt] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run inside an environment: each installed distribution with the bytes of the files its RECORD lists.
SIZES = r"""
import importlib.metadata as md, json, os, sys
sizes = {}
for dist in md.distributions():
    total = 0
    for item in dist.files or ():
        path = dist.locate_file(item)
        try:
            total += os.path.getsize(path)
        except OSError:
            continue
    sizes[dist.metadata["Name"]] = total
json.dump(sizes, sys.stdout)
"""
TOOLS = {"pip", "setuptools", "wheel"}  # what any virtual environment holds


def sizes_of(python: Path | str) -> dict[str, int]:
    output = subprocess.run([str(python), "-c", SIZES], check=True, capture_output=True, text=True).stdout
    return {name: size for name, size in json.loads(output).items() if name.lower() not in TOOLS}


def report(title: str, sizes: dict[str, int], top: int) -> int:
    total = sum(sizes.values())
    print(f"{title}: {total / 1e6:,.0f} MB in {len(sizes)} distributions")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:top]:
        print(f"  {name:<36} {size / 1e6:8.1f} MB")
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-closure-") as folder:
        venv.create(folder, with_pip=True)
        python = Path(folder) / ("Scripts" if sys.platform == "win32" else "bin") / "python"
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                args.requirements,
            ],
            check=True,
        )
        app = report(f"app closure ({Path(args.requirements).name})", sizes_of(python), args.top)
    baseline = report(
        "baseline: this environment (app, local mode, training, tests)", sizes_of(sys.executable), 5
    )
    print(f"app closure / baseline: {app / baseline:.2f}")
    print(f"goal <= 400 MB: {'met' if app <= 400e6 else 'NOT met'} ({app / 1e6:,.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
