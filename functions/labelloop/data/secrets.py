"""Secrets Manager: the key that signs API tokens."""

from __future__ import annotations


def signing_key(secretsmanager, secret_id: str) -> bytes:
    return secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"].encode()
