"""Powertools' DynamoDB persistence layer: the batch worker's idempotency per message."""

from __future__ import annotations


def persistence_layer(table_name: str):
    """Its own plain client: the resource's client would serialise the typed values
    Powertools sends a second time."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from botocore.config import Config

    client = boto3.session.Session().client("dynamodb",
                                            config=Config(retries={"mode": "standard"}))
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
