"""The HTTP API (Nyckel's public v1 API, plus model versions and training): powertools'
event handler with pydantic request models; `labelloop.handlers.api` is its Lambda entry."""
