"""The indexed moto (labelloop.local.fastdynamo) answers every query as moto itself does.

Random puts, updates, deletes and transactions (some failing, so rolled back) on a table shaped
like labelloop's (pk/sk, a GSI with string keys, numeric range keys in a second partition), then
queries of every key-condition kind, both directions, with Limit and ExclusiveStartKey paging.
Under EVAL_CAPTURE_VERIFY_MOTO=1 each indexed query is recomputed by moto's own code and must be
equal (a difference fails the request); the pages must also add up to what a plain read expects.
"""

from __future__ import annotations

import pickle
import random

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from labelloop.local.fastdynamo import install

PARTS = ["FN#a", "FN#b"]
GROUPS = ["BUF#x", "BUF#y", "BUF#z"]


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("EVAL_CAPTURE_VERIFY_MOTO", "1")
    install()
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("pk", "sk", "g", "gs")],
            GlobalSecondaryIndexes=[{
                "IndexName": "gsi", "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                              {"AttributeName": "gs", "KeyType": "RANGE"}]}])
        c.create_table(
            TableName="n", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "n", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "n", "AttributeType": "N"}])
        yield c


def key(rng) -> dict:
    return {"pk": {"S": rng.choice(PARTS)},
            "sk": {"S": rng.choice(["SAMPLE#", "LABEL#", "S"]) + f"{rng.randrange(60):02d}"}}


def mutate(c, rng) -> None:
    k = key(rng)
    op = rng.random()
    g = {"g": {"S": rng.choice(GROUPS)}, "gs": {"S": f"{rng.random():.3f}"}}
    try:
        if op < 0.4:
            # Half conditional, on a value that varies: a parsed condition is reused only
            # with its own values (checked against a fresh parse under the variable above).
            cond = ({"ConditionExpression": "attribute_not_exists(pk) OR v < :v",
                     "ExpressionAttributeValues": {":v": {"N": str(rng.randrange(9))}}}
                    if rng.random() < 0.5 else {})
            c.put_item(TableName="t", Item={**k, "v": {"N": str(rng.randrange(9))},
                                            **(g if rng.random() < 0.6 else {})}, **cond)
        elif op < 0.55:
            c.delete_item(TableName="t", Key=k)
        elif op < 0.7:  # moves the item within, into or out of the GSI
            if rng.random() < 0.5:
                c.update_item(TableName="t", Key=k, UpdateExpression="SET g = :g, gs = :s",
                              ExpressionAttributeValues={":g": g["g"], ":s": g["gs"]})
            else:
                c.update_item(TableName="t", Key=k, UpdateExpression="REMOVE g")
        else:  # a transaction; half of them fail their condition and roll back
            c.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {**key(rng), **g}}},
                {"Delete": {"TableName": "t", "Key": key(rng)}},
                {"Update": {"TableName": "t", "Key": k, "UpdateExpression": "SET g = :g, gs = :s",
                            "ExpressionAttributeValues": {":g": g["g"], ":s": g["gs"]}}},
                {"ConditionCheck": {"TableName": "n", "Key": {"pk": {"S": "c"}, "n": {"N": "0"}},
                                    "ConditionExpression": "attribute_exists(pk)"
                                    if rng.random() < 0.5 else "attribute_not_exists(pk)"}}])
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("TransactionCanceledException",
                                               "ConditionalCheckFailedException",
                                               "ValidationException"), e


def pages(c, **kwargs) -> list[dict]:
    out, start = [], None
    while True:
        resp = c.query(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
        out += resp["Items"]
        start = resp.get("LastEvaluatedKey")
        if not start:
            return out


def test_indexed_queries_answer_as_moto_does(ddb):
    rng = random.Random(17)
    for n in range(40):
        ddb.put_item(TableName="n", Item={"pk": {"S": "c"}, "n": {"N": str(n * 7 % 40 - 9)}})
    conditions = [
        ("pk = :p", {}), ("pk = :p AND begins_with(sk, :a)", {":a": {"S": "SAMPLE#"}}),
        ("pk = :p AND sk BETWEEN :a AND :b", {":a": {"S": "LABEL#1"}, ":b": {"S": "S2"}}),
        ("pk = :p AND sk < :a", {":a": {"S": "S"}}), ("pk = :p AND sk >= :a", {":a": {"S": "S3"}}),
        ("pk = :p AND sk = :a", {":a": {"S": "S07"}})]
    for round_ in range(4):
        for _ in range(50):
            mutate(ddb, rng)
        for expr, values in conditions:
            for forward in (True, False):
                everything = pages(ddb, TableName="t", KeyConditionExpression=expr,
                                   ExpressionAttributeValues={":p": {"S": "FN#a"}, **values},
                                   ScanIndexForward=forward)
                paged = pages(ddb, TableName="t", KeyConditionExpression=expr, Limit=7,
                              ExpressionAttributeValues={":p": {"S": "FN#a"}, **values},
                              ScanIndexForward=forward)
                assert paged == everything
                sks = [i["sk"]["S"] for i in everything]
                assert sks == sorted(sks, reverse=not forward)
        for group in GROUPS:
            for forward in (True, False):
                got = pages(ddb, TableName="t", IndexName="gsi", Limit=3,
                            KeyConditionExpression="g = :g",
                            ExpressionAttributeValues={":g": {"S": group}},
                            ScanIndexForward=forward)
                pages(ddb, TableName="t", IndexName="gsi", Limit=2,
                      KeyConditionExpression="g = :g AND gs > :s",
                      ExpressionAttributeValues={":g": {"S": group}, ":s": {"S": "0.5"}},
                      ScanIndexForward=forward)
                keys = [(i["gs"]["S"], i["pk"]["S"], i["sk"]["S"]) for i in got]
                assert keys == sorted(keys, reverse=not forward)
                assert all(i["g"]["S"] == group for i in got)
        for cond in ("pk = :p AND n < :a", "pk = :p AND n BETWEEN :b AND :a"):
            got = pages(ddb, TableName="n", KeyConditionExpression=cond, Limit=4,
                        ExpressionAttributeValues={":p": {"S": "c"}, ":a": {"N": "12"},
                                                   **({":b": {"N": "-3"}} if ":b" in cond
                                                      else {})})
            values = [n * 7 % 40 - 9 for n in range(40)]
            expected = [v for v in values if v < 12] if ":b" not in cond else [
                v for v in values if -3 <= v <= 12]  # BETWEEN includes both ends
            assert [int(i["n"]["N"]) for i in got] == sorted(expected)
        if round_ == 2:  # indexes are derived: a pickled and restored table rebuilds them
            from moto.dynamodb.models import dynamodb_backends

            backend = dynamodb_backends["123456789012"]["us-east-1"]
            restored = pickle.loads(pickle.dumps(backend.tables["t"]))
            assert not {"_fd_parts", "_fd_gsis"} & set(vars(restored))
            backend.tables["t"] = restored


def test_a_query_near_one_megabyte_stops_where_moto_stops(ddb):
    """Matching items of 750 KB: the first later item in reading order that would take the
    results over 1 MB stops moto's read with a LastEvaluatedKey; small later items do not.
    Under EVAL_CAPTURE_VERIFY_MOTO each answer is also compared with moto's own."""
    def put(pk: str, sk: str, size: int) -> None:
        ddb.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": sk},
                                          "v": {"S": "x" * size}})

    for pk, neighbour in (("FN#big", 300_000), ("FN#small", 100)):
        put(pk, "A1", neighbour)
        for sk in ("B1", "B2", "B3"):
            put(pk, sk, 250_000)
        put(pk, "C1", neighbour)
    for pk, stopped in (("FN#big", True), ("FN#small", False)):
        for forward in (True, False):
            resp = ddb.query(TableName="t", KeyConditionExpression="pk = :p AND "
                             "begins_with(sk, :b)", ScanIndexForward=forward,
                             ExpressionAttributeValues={":p": {"S": pk}, ":b": {"S": "B"}})
            assert len(resp["Items"]) == 3
            assert ("LastEvaluatedKey" in resp) is stopped, (pk, forward)


def test_binary_values_in_conditions_and_filters_are_answered(ddb):
    """Expressions with binary values (bytes once moto has parsed the request) are parsed
    once per value like any other; a cache key that could not take bytes failed such
    requests."""
    ddb.put_item(TableName="t", Item={"pk": {"S": "FN#b"}, "sk": {"S": "S01"},
                                      "h": {"B": b"\x00\x01"}})
    for value, matches in ((b"\x00\x01", True), (b"\x00\x02", False)):
        for _ in range(2):  # the second time from the parsed expression
            items = ddb.query(TableName="t", KeyConditionExpression="pk = :p",
                              FilterExpression="h = :h",
                              ExpressionAttributeValues={":p": {"S": "FN#b"},
                                                         ":h": {"B": value}})["Items"]
            assert bool(items) is matches
            try:
                ddb.transact_write_items(TransactItems=[{"Update": {
                    "TableName": "t", "Key": {"pk": {"S": "FN#b"}, "sk": {"S": "S01"}},
                    "UpdateExpression": "SET n = :one", "ConditionExpression": "h = :h",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":h": {"B": value}}}}])
                assert matches
            except ClientError as e:
                assert not matches and e.response["Error"]["Code"] == (
                    "TransactionCanceledException"), e
