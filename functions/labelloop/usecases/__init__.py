"""Use cases: what the API and the workers do, written against `Deps` (never boto3)."""
