"""Azure Event Grid subscriptions made from the routing table (infra/routing.json) that the local host routes by.

`python -m shared.tools.infra subscriptions --out FILE` writes the deployment parameters of infra/subscriptions.bicep:
one entry per routing-table subscription (event types, subject filters and advanced filters with their
placeholders filled in, delivery attempts, time to live, target function), plus the names of the deployed
resources, which it reads from the azd environment (the outputs of infra/main.bicep, which also name the
containers and the experiment the placeholders stand for). The azd `postdeploy` hook deploys that file once the
code, and so each target function, exists. `python -m shared.tools.infra functions` lists the target functions.

Only the standard library and `shared.host.routing` are imported, so the hook runs with any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.config import ConfigError, Containers, experiment_name
from shared.config.declare import load as load_settings
from shared.config.declare import raw_values
from shared.host.routing import TABLE, RoutingError, Subscription, load

# The routing table's topic keys (as the local host names its topic endpoints) and the main.bicep outputs that
# name the deployed topic of each. Storage and workspace events come from system topics, MLOps.* from ours.
TOPIC_OUTPUTS = {
    "storage": "STORAGE_SYSTEM_TOPIC_NAME",
    "workspace": "WORKSPACE_SYSTEM_TOPIC_NAME",
    "mlops": "CUSTOM_TOPIC_NAME",
}
SYSTEM_TOPICS = frozenset({"storage", "workspace"})
FUNCTION_APP_OUTPUT = "AZURE_FUNCTION_APP_NAME"
STORAGE_ACCOUNT_OUTPUT = "AZURE_STORAGE_ACCOUNT_NAME"
PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"

# Event Grid's limits: a subscription name, delivery attempts and time to live outside them are refused by Azure
# only at deployment time; checking here names the routing-table entry instead.
_NAME = re.compile(r"[A-Za-z0-9-]{3,64}")
_MAX_ATTEMPTS = 30
_MAX_TTL_MINUTES = 1440


class DeploymentUnknown(LookupError):
    """The environment does not name the deployed resources (infra/main.bicep's outputs)."""


def containers_from(env: Mapping[str, str]) -> Containers:
    """The container names the app uses: MLOPS_CONTAINER_* from `env`, else their declared defaults."""
    return load_settings(Containers, raw_values(Containers, env))


def subscription_entry(subscription: Subscription, topic_names: Mapping[str, str]) -> dict[str, Any]:
    """One routing-table subscription as infra/subscriptions.bicep consumes it."""
    if subscription.topic not in TOPIC_OUTPUTS:
        raise RoutingError(
            f"subscription {subscription.name!r}: topic {subscription.topic!r} is not one of {sorted(TOPIC_OUTPUTS)}"
        )
    if not _NAME.fullmatch(subscription.name):
        raise RoutingError(
            f"subscription {subscription.name!r}: Event Grid names are 3-64 letters, digits and '-'"
        )
    if not subscription.event_types:
        raise RoutingError(f"subscription {subscription.name!r}: it names no event type")
    if not 1 <= subscription.max_delivery_attempts <= _MAX_ATTEMPTS:
        raise RoutingError(
            f"subscription {subscription.name!r}: max_delivery_attempts must be 1-{_MAX_ATTEMPTS}, "
            f"not {subscription.max_delivery_attempts}"
        )
    if not 1 <= subscription.event_ttl_minutes <= _MAX_TTL_MINUTES:
        raise RoutingError(
            f"subscription {subscription.name!r}: event_ttl_minutes must be 1-{_MAX_TTL_MINUTES}, "
            f"not {subscription.event_ttl_minutes}"
        )
    return {
        "name": subscription.name,
        "topicType": "system" if subscription.topic in SYSTEM_TOPICS else "custom",
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


def _required(env: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise DeploymentUnknown(
            f"{', '.join(missing)} not set; run through azd (azd up / azd deploy) "
            "after `azd provision`, whose outputs set them"
        )
    return {name: env[name] for name in names}


def parameters(env: Mapping[str, str], table: Path = TABLE) -> dict[str, Any]:
    """The deployment parameters file of infra/subscriptions.bicep, for the deployment `env` describes."""
    resources = _required(env, [FUNCTION_APP_OUTPUT, STORAGE_ACCOUNT_OUTPUT, *TOPIC_OUTPUTS.values()])
    topic_names = {topic: resources[output] for topic, output in TOPIC_OUTPUTS.items()}
    containers = containers_from(env)
    subscriptions = load(containers, table, experiment=experiment_name(env))
    entries = [subscription_entry(s, topic_names) for s in subscriptions]
    seen = Counter((e["topicName"], e["name"]) for e in entries)
    duplicates = [key for key, count in seen.items() if count > 1]
    if duplicates:
        raise RoutingError(f"subscription names repeat on one topic: {sorted(duplicates)}")
    return {
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "functionAppName": {"value": resources[FUNCTION_APP_OUTPUT]},
            "storageAccountName": {"value": resources[STORAGE_ACCOUNT_OUTPUT]},
            "deadLetterContainerName": {"value": containers.deadletter},
            "subscriptions": {"value": entries},
        },
    }


def target_functions(table: Path = TABLE) -> list[str]:
    """The functions the routing table delivers to, each once, in table order."""
    names = [s.function for s in load(containers_from({}), table, experiment=experiment_name({}))]
    return list(dict.fromkeys(names))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.tools.infra", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("subscriptions", help="write infra/subscriptions.bicep's parameters file")
    generate.add_argument("--out", type=Path, help="file to write; default: standard output")
    commands.add_parser("functions", help="list the functions the routing table targets, one a line")
    args = parser.parse_args(argv)
    if args.command == "functions":
        print("\n".join(target_functions()))
        return 0
    try:
        text = json.dumps(parameters(os.environ), indent=2) + "\n"
    except RoutingError as error:
        print(f"shared.tools.infra: {TABLE}: {error}", file=sys.stderr)
        return 1
    except (DeploymentUnknown, ConfigError) as error:
        print(f"shared.tools.infra: {error}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
