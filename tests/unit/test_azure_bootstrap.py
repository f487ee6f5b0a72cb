"""MLOPS_BACKEND=azure wires the Azure adapters: one managed-identity credential, one MLClient made on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.azure.endpoints import AzureMLEndpoints
from shared.adapters.azure.events import EventGridPublisher
from shared.adapters.azure.jobs import AzureMLTrainingJobs
from shared.adapters.azure.ml_client import MLClientProvider
from shared.adapters.azure.registry import AzureMLRegistry
from shared.adapters.azure.storage import AzureBlobStore
from shared.config import Settings
from tests.contract.azure_stub import AZURE_SETTINGS, FakeCredential, StubTransport

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
ROOT = Path(__file__).resolve().parents[2]


class RecordingCredential(FakeCredential):
    made: list[RecordingCredential] = []

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        RecordingCredential.made.append(self)


@pytest.fixture()
def credentials(monkeypatch: pytest.MonkeyPatch) -> list[RecordingCredential]:
    import azure.identity

    RecordingCredential.made = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", RecordingCredential)
    return RecordingCredential.made


def test_the_azure_backend_builds_the_azure_adapters(credentials: list[RecordingCredential]) -> None:
    deps = bootstrap.build(Settings.from_env(AZURE_SETTINGS))
    assert isinstance(deps.blobs, AzureBlobStore)
    assert isinstance(deps.jobs, AzureMLTrainingJobs)
    assert isinstance(deps.registry, AzureMLRegistry)
    assert isinstance(deps.endpoints, AzureMLEndpoints) and deps.endpoints.name == "mlops-endpoint"
    assert isinstance(deps.publisher, EventGridPublisher)


def test_one_credential_for_every_service_pinned_to_the_managed_identity(
    credentials: list[RecordingCredential],
) -> None:
    deps = bootstrap.build(Settings.from_env(AZURE_SETTINGS))
    [credential] = credentials
    assert credential.options == {"managed_identity_client_id": AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"]}
    assert deps.blobs._service.credential is credential  # type: ignore[attr-defined]


def test_without_a_client_id_the_credential_chooses_the_identity(
    credentials: list[RecordingCredential],
) -> None:
    bootstrap.build(Settings.from_env({**AZURE_SETTINGS, "MLOPS_AZURE_CLIENT_ID": ""}))
    assert credentials[0].options == {"managed_identity_client_id": None}


def test_building_the_azure_backend_imports_no_azure_ml() -> None:
    probe = (
        "import json, sys\n"
        "from shared.bootstrap import build\n"
        "from shared.config import Settings\n"
        f"build(Settings.from_env({AZURE_SETTINGS!r}))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure.ai.ml'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_ml_client_is_made_once_on_first_use() -> None:
    settings = Settings.from_env(AZURE_SETTINGS)
    assert settings.azure is not None
    provider = MLClientProvider(settings.azure, FakeCredential(), transport=StubTransport({}))
    assert not provider.built
    client = provider()
    assert provider.built and provider() is client
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        settings.azure.subscription_id,
        settings.azure.resource_group,
        settings.azure.workspace,
    )
