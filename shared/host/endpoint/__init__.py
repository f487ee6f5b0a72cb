"""The local stand-in for an Azure ML managed online endpoint: a router and its scoring processes.

- `router`: the one owner of an endpoint's deployments, traffic, mirroring, health and statistics
- `api` and `handler`: its HTTP interface, the scoring URL and the admin API `LocalEndpoint` calls
- `deployment`, `processes`: one deployment's scoring process, started and stopped with psutil
- `health`, `mirror`, `stats`, `store`: its health monitor, mirror workers, live counts and state file
- `scoring`: the scoring process itself (`python -m shared.host.endpoint.scoring`)

Kept free of imports: every scoring process imports this package first.
"""
