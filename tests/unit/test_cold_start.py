"""`import function_app` is what every cold start pays: it must stay light and expose exactly our functions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("azure.ai.ml", "evidently", "sklearn", "pandas", "scipy", "mlflow", "numpy")

PROBE = """
import json, sys, time
started = time.perf_counter()
import function_app
seconds = time.perf_counter() - started
functions = {f.get_function_name(): f.get_trigger().get_binding_name() for f in function_app.app.get_functions()}
print(json.dumps({"seconds": seconds, "functions": functions,
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r or m.startswith("azure.ai.ml")),
                  "library": sorted(m for m in sys.modules if m.startswith("shared."))}))
"""


def _probe() -> dict:
    heads = tuple({m.split(".")[0] for m in HEAVY if m != "azure.ai.ml"})
    output = subprocess.run(
        [sys.executable, "-c", PROBE % (heads,)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def test_function_app_indexes_every_function_with_its_trigger() -> None:
    assert _probe()["functions"] == {
        "on_data_landed": "eventGridTrigger",
        "on_data_deleted": "eventGridTrigger",
        "on_run_completed": "eventGridTrigger",
        "on_model_registered": "eventGridTrigger",
        "on_drift_detected": "eventGridTrigger",
        "on_monitor_alert": "eventGridTrigger",
        "on_notify": "eventGridTrigger",
        "reconcile": "timerTrigger",
        "retention": "timerTrigger",
        "scheduled_retrain": "timerTrigger",
        "drift_check": "timerTrigger",
        "on_labels_landed": "eventGridTrigger",
        "quality_check": "timerTrigger",
        "status": "httpTrigger",
        "lineage": "httpTrigger",
        "release_review": "httpTrigger",
        "history": "httpTrigger",
        "approve": "httpTrigger",
        "reject": "httpTrigger",
        "rollback": "httpTrigger",
        "retry_stuck": "httpTrigger",
        "retrain": "httpTrigger",
    }


def test_import_pulls_in_no_heavy_module() -> None:
    assert _probe()["heavy"] == []


def test_indexing_imports_none_of_the_library_each_function_imports_its_own_when_it_runs() -> None:
    assert _probe()["library"] == []
