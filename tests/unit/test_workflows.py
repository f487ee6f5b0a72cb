""".github/workflows/retrain.yml: when it runs, whether a commit changed the training project (its script, run
on real commits of a scratch repository), and what it sends the app (its script, against stand-ins for azd, az
and curl that record what they were given)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHA = "0123456789abcdef0123456789abcdef01234567"
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]  # how GitHub runs a step's `run`

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to make commits")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true


def step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    [found] = [s for s in job["steps"] if s.get("id") == step_id]
    return found


RETRAIN = load("retrain.yml")


def test_it_runs_after_ci_passes_on_a_push_to_main() -> None:
    ci = load("ci.yml")
    on = triggers(RETRAIN)
    assert on["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    assert "push" in triggers(ci) and triggers(ci)["push"]["branches"] == ["main"]
    gate = " ".join(RETRAIN["jobs"]["changes"]["if"].split())
    assert "github.event.workflow_run.conclusion == 'success'" in gate
    assert "github.event.workflow_run.event == 'push'" in gate  # not a pull request's branch named main
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in gate
    retrain = RETRAIN["jobs"]["retrain"]
    assert retrain["needs"] == "changes" and retrain["if"] == "needs.changes.outputs.training == 'true'"


def test_deploy_yml_deploys_only_what_retrain_yml_would() -> None:
    """Both deploy on CI's success: both refuse a pull request's run, whatever its branch is called."""
    deploy = load("deploy.yml")
    assert triggers(deploy)["workflow_run"] == triggers(RETRAIN)["workflow_run"]
    gate = RETRAIN["jobs"]["changes"]["if"]
    assert " ".join(deploy["jobs"]["deploy"]["if"].split()) == " ".join(gate.split())
    approver_app = step(RETRAIN["jobs"]["retrain"], "retrain")["env"]["APPROVER_APP_CLIENT_ID"]
    assert deploy["jobs"]["deploy"]["env"]["MLOPS_APPROVER_APP_CLIENT_ID"] == approver_app


def test_it_deploys_the_tested_commit_before_asking_and_never_beside_deploy_yml() -> None:
    job = RETRAIN["jobs"]["retrain"]
    ids = [s.get("id") for s in job["steps"]]
    assert ids.index("deploy") < ids.index("retrain")
    assert "azd deploy --no-prompt" in step(job, "deploy")["run"]
    assert job["steps"][0]["with"]["ref"] == "${{ needs.changes.outputs.sha }}"
    changes = RETRAIN["jobs"]["changes"]
    assert changes["outputs"]["sha"] == "${{ steps.diff.outputs.sha }}"
    assert step(changes, "diff")["env"]["SHA"] == "${{ github.event.workflow_run.head_sha || github.sha }}"
    assert job["concurrency"]["group"] == load("deploy.yml")["concurrency"]["group"]
    assert job["concurrency"]["cancel-in-progress"] is False


def test_scripts_take_their_inputs_from_the_environment_only() -> None:
    """No `${{ }}` inside a script: a value GitHub substitutes there is run as shell (script injection)."""
    for job in RETRAIN["jobs"].values():
        for s in job["steps"]:
            assert "${{" not in s.get("run", ""), s.get("name")


# --- did the commit change the training project? ----------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(
    repo: Path, message: str, write: dict[str, str] | None = None, move: tuple[str, str] | None = None
) -> str:
    for name, text in (write or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    if move:
        (repo / move[1]).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", *move)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def changed(repo: Path, sha: str, folder: str = "examples/", by_hand: bool = False) -> dict[str, str]:
    output = repo / "github_output"
    output.write_text("")
    script = step(RETRAIN["jobs"]["changes"], "diff")["run"]
    env = {
        "PATH": os.environ["PATH"],
        "SHA": sha,
        "TRAINING_CODE_PATH": folder,
        "BY_HAND": "true" if by_hand else "false",
        "GITHUB_OUTPUT": str(output),
    }
    subprocess.run([*BASH, script], cwd=repo, env=env, check=True, capture_output=True)
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def test_only_a_commit_touching_the_training_folder_counts(repo: Path) -> None:
    first = commit(repo, "start", {"README.md": "x", "examples/lgbm/train.py": "1"})
    docs = commit(repo, "docs", {"README.md": "y"})
    code = commit(repo, "code", {"examples/lgbm/train.py": "2"})
    sibling = commit(repo, "a folder whose name only begins alike", {"examples-old/train.py": "1"})
    moved_out = commit(repo, "move out", move=("examples/lgbm/train.py", "attic/train.py"))

    assert changed(repo, first) == {"sha": first, "training": "true"}  # a first commit brings every file
    assert changed(repo, docs) == {"sha": docs, "training": "false"}
    assert changed(repo, code) == {"sha": code, "training": "true"}
    assert changed(repo, sibling)["training"] == "false"
    assert changed(repo, moved_out)["training"] == "true"
    assert changed(repo, docs, by_hand=True)["training"] == "true"  # asked by hand: whatever changed


def test_the_folder_is_the_repository_variable_however_it_is_spelled(repo: Path) -> None:
    commit(repo, "start", {"README.md": "x"})
    ours = commit(repo, "ours", {"ml/train/model.py": "1"})
    for spelling in ("ml/train", "ml/train/", "./ml/train/"):
        assert changed(repo, ours, spelling)["training"] == "true"
    assert changed(repo, ours, "ml/training")["training"] == "false"
    assert changed(repo, ours, "examples/")["training"] == "false"
    assert changed(repo, ours, ".")["training"] == "true"  # the whole repository is the project


def test_a_merge_counts_what_it_brought_in(repo: Path) -> None:
    commit(repo, "start", {"README.md": "x"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "new model", {"examples/sk/train.py": "1"})
    commit(repo, "its docs", {"docs/model.md": "1"})
    git(repo, "checkout", "-q", "main")
    commit(repo, "meanwhile", {"README.md": "y"})
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    merge = git(repo, "rev-parse", "HEAD")

    assert changed(repo, merge)["training"] == "true"


# --- what it sends the app ------------------------------------------------------------------------------------------


STAND_INS = {
    "azd": """#!/usr/bin/env bash
case "$*" in
  "env get-value SERVICE_MLOPS_BASE_URL") echo https://func-test.azurewebsites.net ;;
  "env get-value AZURE_RESOURCE_GROUP") echo rg-test ;;
  "env get-value AZURE_FUNCTION_APP_NAME") echo func-test ;;
  *) echo "azd $*" >&2; exit 2 ;;
esac
""",
    "az": """#!/usr/bin/env bash
echo "$*" >> "$LOG/az.args"
case "$1 $2" in
  "account get-access-token") echo token-abc ;;
  "functionapp keys") echo key-of-the-app ;;
  *) exit 2 ;;
esac
""",
    "curl": """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$LOG/curl.args"
while [ $# -gt 0 ]; do
  case "$1" in
    -H) case "$2" in @*) cat "${2#@}" >> "$LOG/curl.headers" ;; *) echo "$2" >> "$LOG/curl.headers" ;; esac; shift ;;
    --data) cat "${2#@}" > "$LOG/curl.body"; shift ;;
  esac
  shift
done
echo '{"id": "retrain:code-STAND-IN", "cause": "code", "request": "req-1", "run": null}'
""",
}


def ask(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir, log, runner_temp = tmp_path / "bin", tmp_path / "log", tmp_path / "runner"
    for folder in (bin_dir, log, runner_temp):
        folder.mkdir()
    for name, text in STAND_INS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    (tmp_path / "github_output").write_text("")
    script = step(RETRAIN["jobs"]["retrain"], "retrain")["run"]
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LOG": str(log),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "SHA": SHA,
        "FUNCTION_KEY": "key-123",
        "APPROVER_APP_CLIENT_ID": "api-app-id",
        "RUN_URL": "https://github.com/o/r/actions/runs/9",
        **env,
    }
    done = subprocess.run([*BASH, script], env=environment, capture_output=True, text=True)
    return done, log


def test_the_retrain_call_sends_the_commit_with_the_key_and_the_workflows_identity(tmp_path: Path) -> None:
    done, log = ask(tmp_path)

    assert done.returncode == 0, done.stderr
    args = (log / "curl.args").read_text().splitlines()
    assert "https://func-test.azurewebsites.net/api/retrain" in args and args[args.index("-X") + 1] == "POST"
    assert json.loads((log / "curl.body").read_text()) == {
        "reason": "new training code on main: https://github.com/o/r/actions/runs/9",
        "code_version": SHA,
    }
    headers = (log / "curl.headers").read_text().splitlines()
    assert f"Idempotency-Key: code-{SHA}" in headers
    assert "x-functions-key: key-123" in headers and "Authorization: Bearer token-abc" in headers
    calls = (log / "az.args").read_text()
    assert "--scope api://api-app-id/.default" in calls and "functionapp keys" not in calls
    assert not any("key-123" in a or "token-abc" in a for a in args)  # secrets stay off the command line
    assert not (tmp_path / "runner" / "headers").exists()
    assert (tmp_path / "github_output").read_text() == "request=retrain:code-STAND-IN\n"


def test_without_the_secret_the_call_uses_the_apps_default_key(tmp_path: Path) -> None:
    done, log = ask(tmp_path, FUNCTION_KEY="")

    assert done.returncode == 0, done.stderr
    assert (
        "functionapp keys list --query functionKeys.default -o tsv -g rg-test -n func-test"
        in (log / "az.args").read_text()
    )
    assert "x-functions-key: key-of-the-app" in (log / "curl.headers").read_text().splitlines()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHA": "main; rm -rf /"}, "not a commit id"),
        ({"SHA": SHA[:12]}, "not a commit id"),
        ({"APPROVER_APP_CLIENT_ID": ""}, "MLOPS_APPROVER_APP_CLIENT_ID is not set"),
    ],
)
def test_the_retrain_call_stops_before_sending_what_it_cannot_stand_for(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    done, log = ask(tmp_path, **env)

    assert done.returncode != 0 and message in done.stderr
    assert not (log / "curl.args").exists()
