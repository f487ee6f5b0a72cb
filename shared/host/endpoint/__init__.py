"""The local stand-in for an Azure ML managed online endpoint: a router and its scoring processes."""
