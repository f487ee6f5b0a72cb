"""The Azure template agrees with the code: functions, containers, settings, roles, parameters, subscriptions.

No Bicep compiler runs here (CI's `az bicep build` checks the syntax); these tests read the Bicep as text and
hold it to what the code needs: the routing table's functions exist with Event Grid triggers, every container
and app setting the azure backend reads is declared, every role docs/azure.md lists is assigned, parameter
files and module calls name only declared parameters, and the event subscriptions are the routing table's.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from shared.config import SETTINGS, ConfigError, Containers, Settings
from shared.host import routing
from shared.tools import infra

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION = INFRA / "app" / "function.bicep"
ML = INFRA / "app" / "ml.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
SUBSCRIPTIONS = INFRA / "subscriptions.bicep"
DEFAULTS = {s.name: s.default for s in SETTINGS}

# What azd itself puts in the environment of hooks and parameter files (the rest are main.bicep's outputs).
AZD_VARIABLES = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID", "AZURE_PRINCIPAL_ID"}

# Built-in role definition ids, the same in every tenant.
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}
# A role whose data actions include another's grants it too (Owner ⊇ Contributor ⊇ Reader on blobs).
GRANTED_BY = {
    "Storage Blob Data Contributor": {"Storage Blob Data Contributor", "Storage Blob Data Owner"},
    "Storage Blob Data Reader": {
        "Storage Blob Data Reader",
        "Storage Blob Data Contributor",
        "Storage Blob Data Owner",
    },
}


def load(containers: Containers, path: Path = routing.TABLE) -> tuple[routing.Subscription, ...]:
    """The routing table as the deployed app reads it: the code's default experiment."""
    return routing.load(containers, path, experiment=DEFAULTS["MLOPS_AZURE_EXPERIMENT"])


# ---- reading Bicep as text


def _strip_comments(text: str) -> str:
    """Bicep without `//` and `/* */` comments; strings (which may hold `//`, as URLs do) are kept."""
    out: list[str] = []
    i, quoted = 0, False
    while i < len(text):
        char = text[i]
        if quoted:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
            out.append(char)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _bicep(path: Path) -> str:
    return _strip_comments(path.read_text())


def _block(text: str, start: int) -> str:
    """The text inside the first `{...}` at or after `start`, braces inside strings ignored."""
    opening = text.index("{", start)
    depth, quoted = 0, False
    for i in range(opening, len(text)):
        char = text[i]
        if char == "'" and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and char == "{":
            depth += 1
        elif not quoted and char == "}":
            depth -= 1
            if depth == 0:
                return text[opening + 1 : i]
    raise AssertionError(f"unbalanced braces after offset {start}")


def _keys(block: str) -> dict[str, str]:
    """The top-level `key: value` pairs of an object's body (values of nested objects are left as '{')."""
    pairs: dict[str, str] = {}
    depth = 0
    for line in block.splitlines():
        match = re.match(r"\s*'?([\w.$-]+)'?\s*:\s*(.*)$", line)
        if depth == 0 and match:
            pairs[match[1]] = match[2].strip()
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return pairs


def _var(text: str, name: str) -> dict[str, str]:
    match = re.search(rf"^var {name} = \{{", text, re.MULTILINE)
    assert match, f"no `var {name} = {{...}}`"
    return _keys(_block(text, match.start()))


def _params(text: str) -> dict[str, bool]:
    """Declared parameters, each with whether it is required (no default)."""
    return {m[1]: not m[2] for m in re.finditer(r"^param (\w+) [\w.?\[\]]+( =)?", text, re.MULTILINE)}


def _outputs(text: str) -> set[str]:
    return set(re.findall(r"^output (\w+) ", text, re.MULTILINE))


def _module_params(text: str, symbol: str) -> dict[str, str]:
    match = re.search(rf"^module {symbol} '[^']+' = \{{", text, re.MULTILINE)
    assert match, f"no module {symbol}"
    body = _block(text, match.start())
    params = re.search(r"^  params: \{", body, re.MULTILINE)
    assert params, f"module {symbol} passes no params"
    return _keys(_block(body, params.start()))


def _app_settings() -> dict[str, str]:
    text = _bicep(FUNCTION)
    return {**_var(text, "hostSettings"), **_var(text, "mlopsSettings")}


def _role_assignments() -> list[dict[str, str]]:
    found = []
    for path in sorted(INFRA.rglob("*.bicep")):
        text = _bicep(path)
        header = r"^resource (\w+) 'Microsoft\.Authorization/roleAssignments@[\w-]+' = (?:if \(.*\) )?\{"
        for match in re.finditer(header, text, re.MULTILINE):
            body = _block(text, match.start())
            name = re.search(r"name: guid\((\w+)\.id, (\w+), roles\.(\w+)\)", body)
            scope = re.search(r"scope: (\w+)", body)
            role = re.search(
                r"roleDefinitionId: subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', "
                r"roles\.(\w+)\)",
                body,
            )
            principal = re.search(r"principalId: (\w+)", body)
            assert name and scope and role and principal, f"{path.name}: {match[1]} is not in the usual form"
            found.append(
                {
                    "symbol": match[1],
                    "file": path.name,
                    "scope": scope[1],
                    "principal": principal[1],
                    "role": role[1],
                    "name": f"{name[1]}|{name[2]}|{name[3]}",
                }
            )
    return found


def _role_ids() -> dict[str, str]:
    return {key: value.strip("'") for key, value in _var(_bicep(RBAC), "roles").items()}


# ---- functions and the routing table


def _indexed() -> dict[str, dict]:
    """The functions the Functions host would index, with their trigger bindings (indexed once per process)."""
    import function_app
    from shared.host.functions_host import _index

    return {f.get_function_name(): f.get_trigger().get_dict_repr() for f in _index(function_app.app)}


def test_every_routed_function_exists_with_an_event_grid_trigger() -> None:
    functions = _indexed()
    routed = {s.function for s in load(infra.containers_from({}))}
    assert routed, "the routing table routes to no function"
    for name in sorted(routed):
        assert name in functions, f"routing table targets {name}, which function_app does not define"
        assert functions[name]["type"] == "eventGridTrigger", f"{name} is not an Event Grid trigger"
    # and no Event Grid function is left without a subscription (it would never run in Azure)
    grid = {name for name, binding in functions.items() if binding["type"] == "eventGridTrigger"}
    assert grid == routed


def test_timer_schedules_are_app_settings() -> None:
    settings = _app_settings()
    schedules = [b["schedule"] for b in _indexed().values() if b["type"] == "timerTrigger"]
    assert len(schedules) == 5
    for schedule in schedules:
        match = re.fullmatch(r"%(\w+)%", schedule)
        assert match, f"timer schedule {schedule!r} is not an app setting expression"
        assert match[1] in settings, f"{match[1]} (a timer schedule) is not an app setting in function.bicep"


def test_schedule_parameter_defaults_are_the_code_defaults() -> None:
    params = _bicep(MAIN)
    for param, setting in (
        ("reconcileSchedule", "MLOPS_RECONCILE_SCHEDULE"),
        ("retrainSchedule", "MLOPS_RETRAIN_SCHEDULE"),
        ("driftSchedule", "MLOPS_DRIFT_SCHEDULE"),
        ("qualitySchedule", "MLOPS_QUALITY_SCHEDULE"),
        ("retentionSchedule", "MLOPS_RETENTION_SCHEDULE"),
    ):
        assert re.search(rf"^param {param} string = '{re.escape(DEFAULTS[setting])}'$", params, re.MULTILINE)
        assert _app_settings()[setting] == param


# ---- containers


def test_every_container_the_code_defaults_to_is_declared() -> None:
    main = _bicep(MAIN)
    declared = {key: value.strip("'") for key, value in _var(main, "containers").items()}
    expected = {f.name: DEFAULTS[f"MLOPS_CONTAINER_{f.name.upper()}"] for f in fields(Containers)}
    assert declared == expected
    storage = _module_params(main, "storage")
    # every container of the var, and the deployment package's, are created in the app's storage account
    assert "var appContainers = [for container in items(containers): { name: container.value }]" in main
    assert "concat(appContainers, [{ name: deploymentContainer }])" in _block(
        main, main.index("module storage ")
    )
    assert "deploymentContainer" in _block(main, main.index("blobServices:"))
    assert storage["allowSharedKeyAccess"] == "false"
    settings = _app_settings()
    for field in fields(Containers):
        assert settings[f"MLOPS_CONTAINER_{field.name.upper()}"] == f"containers.{field.name}"


# ---- app settings


RG_ID = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-dev"
AZURE_VALUES = {
    "MLOPS_BACKEND": "azure",
    "MLOPS_STORAGE_ACCOUNT_URL": "https://stabc.blob.core.windows.net/",
    "MLOPS_STORAGE_TOPIC": f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/stabc",
    "MLOPS_WORKSPACE_TOPIC": f"{RG_ID}/providers/Microsoft.MachineLearningServices/workspaces/mlw-abc",
    "MLOPS_CUSTOM_TOPIC": f"{RG_ID}/providers/Microsoft.EventGrid/topics/evgt-mlops-abc",
    "MLOPS_EVENTS_ENDPOINT": "https://evgt-mlops-abc.westeurope-1.eventgrid.azure.net/api/events",
    "MLOPS_AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555",
    "MLOPS_AZURE_RESOURCE_GROUP": "rg-dev",
    "MLOPS_AZURE_WORKSPACE": "mlw-abc",
    "MLOPS_AZURE_CLIENT_ID": "66666666-7777-8888-9999-000000000000",
    "MLOPS_AZURE_COMPUTE": "cpu-cluster",
    "MLOPS_AZURE_DATASTORE": "mlopsdatasets",
    "MLOPS_AZURE_INFERENCE_DATASTORE": "mlopsinference",
    "MLOPS_AZURE_ENDPOINT": "mlops-abc",
}


def _azure_env(names: set[str]) -> dict[str, str]:
    """Values for `names` as the deployed app would have them: Azure resources, else the code's defaults."""
    return {name: AZURE_VALUES.get(name, DEFAULTS.get(name, "")) for name in names}


def test_declared_app_settings_are_settings_the_code_reads() -> None:
    unknown = {name for name in _app_settings() if name.startswith("MLOPS_")} - set(DEFAULTS)
    assert unknown == set()


def test_declared_app_settings_make_a_valid_azure_configuration() -> None:
    declared = {name for name in _app_settings() if name.startswith("MLOPS_")}
    settings = Settings.from_env(_azure_env(declared))
    assert settings.backend == "azure" and settings.azure is not None
    assert _app_settings()["MLOPS_BACKEND"] == "'azure'"


def test_every_setting_the_azure_backend_requires_is_declared() -> None:
    everything = _azure_env(set(DEFAULTS))
    Settings.from_env(everything)  # the probe's baseline is valid
    required = set()
    for name in DEFAULTS:
        try:
            settings = Settings.from_env({**everything, name: ""})
        except ConfigError:
            required.add(name)
        else:
            if settings.backend != "azure":  # left unset, the app runs the local backend
                required.add(name)
    # the probe finds what shared/config/ insists on (a probe finding nothing would prove nothing)
    assert {
        "MLOPS_BACKEND",
        "MLOPS_AZURE_WORKSPACE",
        "MLOPS_EVENTS_ENDPOINT",
        "MLOPS_STORAGE_TOPIC",
    } <= required
    assert required - set(_app_settings()) == set()


def test_approvers_tokens_are_verified_for_the_approver_app_registration() -> None:
    settings = _app_settings()
    assert settings["MLOPS_TOKEN_TENANT_ID"] == "empty(approverAppClientId) ? '' : tenant().tenantId"
    assert settings["MLOPS_TOKEN_AUDIENCES"] == (
        "empty(approverAppClientId) ? '' : '${approverAppClientId},api://${approverAppClientId}'"
    )
    assert (
        "MLOPS_TRUST_PLATFORM_PRINCIPAL" not in settings
    )  # the platform's header is not believed by default
    parsed = Settings.from_env(
        {
            **_azure_env({name for name in settings if name.startswith("MLOPS_")}),
            "MLOPS_TOKEN_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "MLOPS_TOKEN_AUDIENCES": "0c5e2d1a-1111-4222-8333-944455556666,api://0c5e2d1a-1111-4222-8333-944455556666",
        }
    )
    assert parsed.approvers.audiences == (
        "0c5e2d1a-1111-4222-8333-944455556666",
        "api://0c5e2d1a-1111-4222-8333-944455556666",
    )


def test_the_host_uses_the_identity_for_storage_and_telemetry() -> None:
    settings = _app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "'ClientId=${identityClientId};Authorization=AAD'"
    )
    assert settings["MLOPS_AZURE_CLIENT_ID"] == "identityClientId"
    assert "AzureWebJobsStorage" not in settings  # a connection string would carry a key
    function = _bicep(FUNCTION)
    assert re.search(r"runtime: \{\s*name: 'python'\s*version: '3.11'", function)


# ---- roles


def _docs_roles() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "azure.md").read_text()
    table = text[text.index("| who | role | scope |") :].split("\n\n")[0].splitlines()[2:]
    rows = [tuple(cell.strip() for cell in line.strip("|").split("|")[:3]) for line in table]
    assert len(rows) >= 7, "docs/azure.md's role table was not found or changed shape"
    return rows  # type: ignore[return-value]


# docs/azure.md's principals and scopes, as rbac.bicep names them. The training cluster runs as the app's
# identity (checked below), so its roles are the app identity's.
PRINCIPALS = {
    "the app's identity": "identityPrincipalId",
    "the compute cluster's identity": "identityPrincipalId",
    "the endpoint's identity": "endpointPrincipalId",
    "the workspace's identity": "workspacePrincipalId",
}
SCOPES = {
    "storage account": {"storage", "datasetsContainer", "deadLetterContainer"},  # the account, or narrower
    "workspace": {"workspace"},
    "custom topic": {"customTopic"},
    "the endpoint (or its resource group)": {"endpoint"},
    "the inference container": {"inferenceContainer"},
    "the datasets container": {"datasetsContainer"},
}


def test_role_ids_are_the_built_in_roles() -> None:
    ids = _role_ids()
    by_id = {role_id: name for name, role_id in BUILT_IN_ROLES.items()}
    for key, role_id in ids.items():
        assert role_id in by_id, f"roles.{key} = {role_id} is not a built-in role this test knows"
        assert key.lower() == by_id[role_id].replace(" ", "").lower(), f"roles.{key} is {by_id[role_id]}"


def test_role_assignments_are_named_by_scope_principal_and_role() -> None:
    assignments = _role_assignments()
    assert len(assignments) >= 10
    for a in assignments:
        assert a["name"] == f"{a['scope']}|{a['principal']}|{a['role']}", a["symbol"]
    names = [a["name"] for a in assignments]
    assert len(names) == len(set(names)), "two assignments share a name"


def test_every_role_docs_azure_md_lists_is_assigned() -> None:
    ids = _role_ids()
    by_id = {role_id: name for name, role_id in BUILT_IN_ROLES.items()}
    assigned = {(a["principal"], by_id[ids[a["role"]]], a["scope"]) for a in _role_assignments()}
    for who, role, scope in _docs_roles():
        assert who in PRINCIPALS, f"docs/azure.md names {who!r}: map it to its principal in rbac.bicep"
        assert scope in SCOPES, f"docs/azure.md names scope {scope!r}: map it to its scope in rbac.bicep"
        assert role in BUILT_IN_ROLES, f"docs/azure.md names role {role!r}, unknown here"
        granting = GRANTED_BY.get(role, {role})
        assert any(
            (PRINCIPALS[who], grant, symbol) in assigned for grant in granting for symbol in SCOPES[scope]
        ), f"{who} lacks {role} on the {scope}"


def test_the_platform_roles_are_assigned() -> None:
    ids = _role_ids()
    by_id = {role_id: name for name, role_id in BUILT_IN_ROLES.items()}
    assigned = {(a["principal"], by_id[ids[a["role"]]], a["scope"]) for a in _role_assignments()}
    assert ("identityPrincipalId", "Monitoring Metrics Publisher", "appInsights") in assigned
    assert ("identityPrincipalId", "AcrPull", "registry") in assigned
    # the Functions host's storage, with an identity, needs Storage Blob Data Owner
    assert ("identityPrincipalId", "Storage Blob Data Owner", "storage") in assigned
    for topic in ("storageTopicPrincipalId", "workspaceTopicPrincipalId", "customTopicPrincipalId"):
        assert (topic, "Storage Blob Data Contributor", "deadLetterContainer") in assigned


def test_the_principals_are_the_ones_the_docs_mean() -> None:
    main = _bicep(MAIN)
    rbac = _module_params(main, "rbac")
    assert rbac["identityPrincipalId"] == "identity.outputs.principalId"
    assert rbac["endpointPrincipalId"] == "ml.outputs.endpointPrincipalId"
    assert rbac["workspacePrincipalId"] == "workspace.outputs.systemAssignedMIPrincipalId!"
    assert re.search(
        r"managedIdentities: \{\s*systemAssigned: true", _block(main, main.index("module workspace "))
    )
    datastore = _block(_bicep(ML), _bicep(ML).index("resource datastore "))
    assert "serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'" in datastore
    assert _module_params(main, "ml")["identityResourceId"] == "identity.outputs.resourceId"
    ml = _bicep(ML)
    compute = _block(ml, ml.index("resource compute "))
    assert re.search(
        r"type: 'UserAssigned'\s*userAssignedIdentities: \{\s*'\$\{identityResourceId\}': \{\}", compute
    )
    for topic in ("storageTopic", "workspaceTopic", "customTopic"):
        assert rbac[f"{topic}PrincipalId"] == f"{topic}.outputs.systemAssignedMIPrincipalId!"
        assert re.search(
            r"managedIdentities: \{\s*systemAssigned: true", _block(main, main.index(f"module {topic} "))
        )


# ---- local auth off, modules pinned


def test_keys_are_off_everywhere_the_app_goes() -> None:
    main = _bicep(MAIN)
    assert _module_params(main, "appInsights")["disableLocalAuth"] == "true"
    assert _module_params(main, "customTopic")["disableLocalAuth"] == "true"
    assert re.search(
        r"features: \{\s*disableLocalAuth: true", _block(main, main.index("module logAnalytics "))
    )
    assert _module_params(main, "storage")["allowSharedKeyAccess"] == "false"


def test_azure_verified_modules_are_pinned() -> None:
    references = []
    for path in INFRA.rglob("*.bicep"):
        references += re.findall(r"'br/public:(avm/[\w/-]+):([^']+)'", _bicep(path))
    assert len(references) >= 12
    for module, version in references:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{module} is not pinned to a version: {version}"


# ---- parameters


def test_the_parameters_file_names_only_declared_parameters() -> None:
    declared = _params(_bicep(MAIN))
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) - set(declared) == set()
    assert {name for name, required in declared.items() if required} - set(given) == set()
    for name, value in given.items():
        for variable in re.findall(r"\$\{(\w+)", json.dumps(value)):
            assert variable in AZD_VARIABLES or variable.startswith("MLOPS_"), f"{name} reads {variable}"


def test_module_calls_name_only_declared_parameters() -> None:
    main = _bicep(MAIN)
    calls = re.findall(r"^module (\w+) 'app/(\w+)\.bicep'", main, re.MULTILINE)
    assert {module for _, module in calls} == {"ml", "function", "rbac"}
    for symbol, module in calls:
        declared = _params(_bicep(INFRA / "app" / f"{module}.bicep"))
        passed = set(_module_params(main, symbol))
        assert passed - set(declared) == set(), f"module {symbol} passes undeclared parameters"
        missing = {name for name, required in declared.items() if required} - passed
        assert missing == set(), f"module {symbol} misses required parameters"


def _environment(**overrides: str) -> dict[str, str]:
    return {
        infra.FUNCTION_APP_OUTPUT: "func-abc",
        infra.STORAGE_ACCOUNT_OUTPUT: "stabc",
        "STORAGE_SYSTEM_TOPIC_NAME": "evgst-storage-abc",
        "WORKSPACE_SYSTEM_TOPIC_NAME": "evgst-workspace-abc",
        "CUSTOM_TOPIC_NAME": "evgt-mlops-abc",
        **overrides,
    }


def test_the_generated_subscription_parameters_are_declared() -> None:
    declared = _params(_bicep(SUBSCRIPTIONS))
    given = infra.parameters(_environment())["parameters"]
    assert set(given) - set(declared) == set()
    assert {name for name, required in declared.items() if required} - set(given) == set()


def test_the_generator_reads_what_main_bicep_outputs() -> None:
    outputs = _outputs(_bicep(MAIN))
    read = {infra.FUNCTION_APP_OUTPUT, infra.STORAGE_ACCOUNT_OUTPUT, *infra.TOPIC_OUTPUTS.values()}
    assert read - outputs == set()
    assert {"MLOPS_CONTAINER_LANDING", "MLOPS_CONTAINER_LABELS", "MLOPS_CONTAINER_DEADLETTER"} <= outputs
    with pytest.raises(infra.DeploymentUnknown, match="CUSTOM_TOPIC_NAME"):
        infra.parameters({k: v for k, v in _environment().items() if k != "CUSTOM_TOPIC_NAME"})


def test_the_hooks_read_only_what_azd_provides() -> None:
    provided = _outputs(_bicep(MAIN)) | AZD_VARIABLES
    hooks = sorted((INFRA / "hooks").iterdir())
    assert {h.name for h in hooks} >= {
        "postdeploy.sh",
        "postdeploy.ps1",
        "preprovision.sh",
        "preprovision.ps1",
    }
    for hook in hooks:
        text = hook.read_text()
        used = set(re.findall(r"\$\{?(?:env:)?(AZURE_\w+)", text))
        assert used, hook.name
        assert used - provided == set(), f"{hook.name} reads variables azd does not set"


# ---- the event subscriptions


def test_subscriptions_are_the_routing_table() -> None:
    entries = infra.parameters(_environment())["parameters"]["subscriptions"]["value"]
    table = load(infra.containers_from({}))
    assert len(entries) == len(table)
    topic_names = {t: _environment()[output] for t, output in infra.TOPIC_OUTPUTS.items()}
    for entry, subscription in zip(entries, table, strict=True):
        assert entry == {
            "name": subscription.name,
            "topicType": "system" if subscription.topic in ("storage", "workspace") else "custom",
            "topicName": topic_names[subscription.topic],
            "function": subscription.function,
            "eventTypes": list(subscription.event_types),
            "subjectBeginsWith": subscription.subject_begins_with,
            "subjectEndsWith": subscription.subject_ends_with,
            "advancedFilters": [f.arm() for f in subscription.advanced_filters],
            "enableAdvancedFilteringOnArrays": subscription.enable_advanced_filtering_on_arrays,
            "maxDeliveryAttempts": subscription.max_delivery_attempts,
            "eventTimeToLiveInMinutes": subscription.event_ttl_minutes,
        }
    landed = next(e for e in entries if e["function"] == "on_data_landed")
    assert landed["subjectBeginsWith"] == "/blobServices/default/containers/landing/blobs/"
    assert landed["topicType"] == "system" and landed["topicName"] == "evgst-storage-abc"
    labels = next(e for e in entries if e["function"] == "on_labels_landed")
    assert labels["subjectBeginsWith"] == "/blobServices/default/containers/labels/blobs/"
    drift = next(e for e in entries if e["eventTypes"] == ["MLOps.DriftDetected"])
    assert drift["topicType"] == "custom" and drift["topicName"] == "evgt-mlops-abc"
    raw = json.loads(infra.TABLE.read_text())["subscriptions"]
    assert [e["name"] for e in entries] == [s["name"] for s in raw]


def test_advanced_filters_are_rendered_in_the_arm_shape() -> None:
    """Exactly what Microsoft.EventGrid 2022-06-15 takes: operatorType, key, then `values` or `value`."""
    entries = {e["name"]: e for e in infra.parameters(_environment())["parameters"]["subscriptions"]["value"]}
    assert entries["model-monitor-breach"]["eventTypes"] == [
        "Microsoft.MachineLearningServices.RunStatusChanged"
    ]
    assert entries["model-monitor-breach"]["advancedFilters"] == [
        {
            "operatorType": "StringContains",
            "key": "data.RunTags.azureml_modelmonitor_threshold_breached",
            "values": ["has failed due to one or more features violating metric thresholds"],
        }
    ]
    assert entries["run-completed"]["eventTypes"] == ["Microsoft.MachineLearningServices.RunCompleted"]
    assert entries["run-completed"]["advancedFilters"] == [
        {"operatorType": "StringIn", "key": "data.experimentName", "values": ["mlops"]}
    ]
    assert entries["run-ended"]["eventTypes"] == ["Microsoft.MachineLearningServices.RunStatusChanged"]
    assert entries["run-ended"]["advancedFilters"] == [
        {"operatorType": "StringIn", "key": "data.runStatus", "values": ["Completed", "Failed", "Canceled"]},
        {"operatorType": "StringIn", "key": "data.experimentName", "values": ["mlops"]},
    ]
    assert entries["data-landed"]["advancedFilters"] == []
    assert all(e["enableAdvancedFilteringOnArrays"] is False for e in entries.values())
    # the v1 dataset monitors' event is routed nowhere any more
    assert not any("DatasetDriftDetected" in t for e in entries.values() for t in e["eventTypes"])


def test_single_value_and_range_operators_render_value_and_pairs(tmp_path: Path) -> None:
    filters = [
        {"operatorType": "NumberLessThan", "key": "data.rows", "value": 10},
        {"operatorType": "BoolEquals", "key": "data.ok", "value": True},
        {"operatorType": "NumberInRange", "key": "data.rows", "values": [[1, 5], [7.5, 9]]},
        {"operatorType": "IsNotNull", "key": "Subject"},
    ]
    generated = infra.parameters(_environment(), _table(tmp_path, advanced_filters=filters))
    entry = generated["parameters"]["subscriptions"]["value"][0]
    assert entry["advancedFilters"] == filters


def test_the_run_routes_follow_the_deployed_experiment() -> None:
    main = _bicep(MAIN)
    assert "MLOPS_AZURE_EXPERIMENT" in _outputs(main)
    default = re.search(r"^var experimentName = .* \? .* : '([^']*)'$", main, re.MULTILINE)
    assert default and default[1] == DEFAULTS["MLOPS_AZURE_EXPERIMENT"]
    generated = infra.parameters(_environment(MLOPS_AZURE_EXPERIMENT="churn-prod"))
    entries = {e["name"]: e for e in generated["parameters"]["subscriptions"]["value"]}
    for name in ("run-completed", "run-ended"):
        [experiment] = [f for f in entries[name]["advancedFilters"] if f["key"] == "data.experimentName"]
        assert experiment["values"] == ["churn-prod"]
    assert re.search(r"\{\w+\}", json.dumps(generated)) is None  # every placeholder filled in
    with pytest.raises(ConfigError, match="MLOPS_AZURE_EXPERIMENT"):
        infra.parameters(_environment(MLOPS_AZURE_EXPERIMENT="   "))


def test_subscriptions_follow_the_deployed_container_names() -> None:
    generated = infra.parameters(
        _environment(
            MLOPS_CONTAINER_LANDING="incoming",
            MLOPS_CONTAINER_LABELS="truth",
            MLOPS_CONTAINER_DEADLETTER="undelivered",
        )
    )["parameters"]
    landed = next(e for e in generated["subscriptions"]["value"] if e["function"] == "on_data_landed")
    assert landed["subjectBeginsWith"] == "/blobServices/default/containers/incoming/blobs/"
    labels = next(e for e in generated["subscriptions"]["value"] if e["function"] == "on_labels_landed")
    assert labels["subjectBeginsWith"] == "/blobServices/default/containers/truth/blobs/"
    assert generated["deadLetterContainerName"] == {"value": "undelivered"}
    assert all(
        "{" not in e["subjectBeginsWith"] + e["subjectEndsWith"] for e in generated["subscriptions"]["value"]
    )


def test_subscriptions_bicep_uses_every_generated_field_and_no_other() -> None:
    text = _bicep(SUBSCRIPTIONS)
    used = set(re.findall(r"\b(?:s|candidate)\.(\w+)", text))
    entry = infra.parameters(_environment())["parameters"]["subscriptions"]["value"][0]
    assert used == set(entry)
    for resource in ("onSystemTopics", "onCustomTopics"):
        body = _block(text, text.index(f"resource {resource} "))
        assert "endpointType: 'AzureFunction'" in body
        assert "resourceId: '${functionApp.id}/functions/${s.function}'" in body
        assert "maxEventsPerBatch: 1" in body  # the functions take one event at a time
        assert re.search(r"deadLetterWithResourceIdentity: \{\s*identity: \{\s*type: 'SystemAssigned'", body)
        assert "blobContainerName: deadLetterContainerName" in body
        filter_body = _block(body, body.index("filter: {"))
        assert "advancedFilters: s.advancedFilters" in filter_body
        assert "enableAdvancedFilteringOnArrays: s.enableAdvancedFilteringOnArrays" in filter_body


def _string_in(*values: str) -> dict[str, object]:
    return {"operatorType": "StringIn", "key": "data.a", "values": list(values)}


def _table(tmp_path: Path, **changes: object) -> Path:
    raw = json.loads(infra.TABLE.read_text())
    raw["subscriptions"][0].update(changes)
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"topic": "queue"}, "topic 'queue'"),
        ({"max_delivery_attempts": 31}, "max_delivery_attempts"),
        ({"event_ttl_minutes": 0}, "event_ttl_minutes"),
        ({"name": "no spaces allowed"}, "names are 3-64"),
        ({"event_types": []}, "no event type"),
        ({"name": "run-completed", "topic": "workspace"}, "repeat on one topic"),
        ({"subject_begins_with": "/containers/{landin}/"}, r"unknown placeholder \{landin\}"),
        ({"advanced_fillters": []}, "unknown advanced_fillters"),
        ({"advanced_filters": [_string_in("x")] * 26}, "26 advanced filters"),
        (
            {"advanced_filters": [_string_in(*"abcdefghijklm"), _string_in(*"nopqrstuvwxyz")]},
            "26 filter values",
        ),
        ({"advanced_filters": [_string_in("x" * 513)]}, "513 characters"),
        ({"advanced_filters": [{**_string_in("x"), "operatorType": "StringLike"}]}, "StringLike"),
        ({"advanced_filters": [{**_string_in("x"), "key": "runStatus"}]}, "neither an envelope field"),
        ({"enable_advanced_filtering_on_arrays": "yes"}, "true or false"),
    ],
)
def test_the_generator_refuses_what_event_grid_would(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(infra.RoutingError, match=message):
        infra.parameters(_environment(), _table(tmp_path, **changes))


def test_the_generator_writes_the_parameters_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _environment().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "subscriptions.parameters.json"
    assert infra.main(["subscriptions", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == infra.parameters(_environment())
    assert infra.target_functions() == list(
        dict.fromkeys(s.function for s in load(infra.containers_from({})))
    )
    assert "on_monitor_alert" in infra.target_functions()


# ---- azd and CI


def test_azure_yaml_deploys_the_app_and_runs_the_hooks() -> None:
    import yaml

    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (service_name, service), *others = project["services"].items()
    assert others == []
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert f"serviceName string = '{service_name}'" in _bicep(FUNCTION)  # the azd-service-name tag
    for hook in ("preprovision", "postdeploy"):
        for platform in ("posix", "windows"):
            assert (ROOT / project["hooks"][hook][platform]["run"]).is_file()


def test_funcignore_ships_the_app_and_nothing_else() -> None:
    import fnmatch

    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)

    for kept in ("function_app.py", "functions", "shared", "host.json", "requirements.txt"):
        assert not ignored(kept), kept
    for left_out in (".venv", "node_modules", "tests", "infra", ".mlops", "local.settings.json", ".git"):
        assert ignored(left_out), left_out


def test_workflows_lint_test_build_and_deploy_with_oidc() -> None:
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    for step in (
        "ruff check .",
        "bash .ci/run",
        "infra/main.bicep",
        "checkov --directory infra --framework bicep",
    ):
        assert step in ci
    assert "warnings are errors" in ci and "grep -Eq" in ci
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "id-token: write" in deploy
    assert "--federated-credential-provider github" in deploy
    assert "azd provision --no-prompt" in deploy and "azd deploy --no-prompt" in deploy
    assert "secrets." not in deploy  # federated credentials: nothing secret to store


def test_the_live_workflow_runs_by_hand_and_always_tears_down() -> None:
    import yaml

    live = yaml.safe_load((ROOT / ".github" / "workflows" / "live.yml").read_text())
    assert set(live[True]) == {"workflow_dispatch"}  # `on:` reads as True in YAML 1.1: by hand only
    steps = live["jobs"]["live"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any("azd up --no-prompt" in run for run in runs)
    assert any("az storage blob upload --auth-mode login" in run for run in runs)
    [down] = [step for step in steps if "azd down" in step.get("run", "")]
    assert down["if"] == "always()" and "--purge" in down["run"]
    assert live["permissions"] == {"id-token": "write", "contents": "read"}
    assert "secrets." not in (ROOT / ".github" / "workflows" / "live.yml").read_text()


def test_the_generator_needs_only_the_standard_library() -> None:
    """The postdeploy hook runs it with whatever Python 3 the deployer has, without the app's packages."""
    import subprocess
    import sys

    # (modules named with a leading underscore are the interpreter's and site hooks', like __main__)
    probe = (
        "import sys, shared.tools.infra; tops = {m.split('.')[0] for m in sys.modules if not m.startswith('_')}; "
        "print(sorted(tops - set(sys.stdlib_module_names) - {'shared'}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize(
    ("provisioned", "endpoint_there", "exists"),
    [(False, False, "false"), (True, True, "true"), (True, False, "false")],
)
def test_preprovision_finds_the_endpoint_by_its_id_whoever_created_it(
    tmp_path: Path, provisioned: bool, endpoint_there: bool, exists: str
) -> None:
    """An endpoint the app created itself carries no azd tags: it is looked up by id, not by tag."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "az").write_text(
        "#!/bin/sh\n"
        f'echo "az $*" >> {calls}\n'
        'if [ "$1 $2" = "resource show" ]; then exit ' + ("0" if endpoint_there else "3") + "; fi\n"
        "exit 0\n"
    )
    (bin_dir / "azd").write_text(f'#!/bin/sh\necho "azd $*" >> {calls}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AZURE_ENV_NAME": "dev", "AZURE_SUBSCRIPTION_ID": "sub-1"}
    if provisioned:
        env |= {
            "AZURE_RESOURCE_GROUP": "rg-dev",
            "AZURE_ML_WORKSPACE_NAME": "mlw-x",
            "AZURE_ML_ENDPOINT_NAME": "ep-x",
        }
    subprocess.run(["sh", str(INFRA / "hooks" / "preprovision.sh")], env=env, check=True, capture_output=True)

    said = calls.read_text().splitlines()
    assert f"azd env set MLOPS_ENDPOINT_EXISTS {exists}" in said
    shows = [line for line in said if line.startswith("az resource show")]
    if provisioned:
        assert shows == [
            "az resource show --ids /subscriptions/sub-1/resourceGroups/rg-dev/providers/"
            "Microsoft.MachineLearningServices/workspaces/mlw-x/onlineEndpoints/ep-x -o none"
        ]
    else:
        assert shows == []
    assert not any("--tag" in line for line in said)
