"""`labelloop clients create` against a stack's outputs (a CloudFormation stack in moto that
outputs the names of the `aws` fixture's resources)."""

from __future__ import annotations

import json

import boto3
import pytest

from labelloop.cli.main import main


def _stack(env: dict, api_url: str) -> None:
    outputs = {"TableName": env["LABELLOOP_TABLE"],
               "InvokesTableName": env["LABELLOOP_INVOKES_TABLE"],
               "BucketName": env["LABELLOOP_BUCKET"],
               "TrainingQueueUrl": env["LABELLOOP_TRAINING_QUEUE_URL"],
               "SigningSecretName": env["LABELLOOP_SIGNING_SECRET"], "ApiUrl": api_url}
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName="Labelloop-test",
                                                 TemplateBody=json.dumps(template))


def test_creates_a_client_that_gets_tokens(api, tmp_path, capsys):
    _stack(api.env, "https://abc.execute-api.us-east-1.amazonaws.com")
    main(["clients", "create", "--stack-name", "Labelloop-test", "--save", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["url"] == "https://abc.execute-api.us-east-1.amazonaws.com"
    saved = json.loads((tmp_path / "credentials.json").read_text())
    assert saved == {k: printed[k] for k in ("client_id", "client_secret")}
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    token = api.token(printed["client_id"], printed["client_secret"])
    status, body, _ = api.call("GET", "/v1/functions", token=token)
    assert status == 200 and body == []
    # The secret is stored only as a hash.
    items = boto3.resource("dynamodb").Table(api.env["LABELLOOP_TABLE"]).scan()["Items"]
    assert not any(printed["client_secret"] in json.dumps(i, default=str) for i in items)


def test_unknown_stack_is_a_clear_error(aws):
    with pytest.raises(SystemExit, match="Labelloop-nope"):
        main(["clients", "create", "--stack-name", "Labelloop-nope"])
