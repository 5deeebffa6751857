"""The Fargate training path: the training Lambda hands large functions to the ECS task (moto's
ECS), and the task's entry point, run here with the message it was given, trains as the
Lambda would."""

from __future__ import annotations

import json

import boto3
import pytest

from labelloop.data.tasks import TRAINING_MESSAGE_ENV


@pytest.fixture
def fargate(aws, monkeypatch):
    """A cluster, task definition and network in moto, named in the training settings."""
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # As the stack's VPC (CDK's default); moto's RunTask needs it for the task's ENI.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="training", Description="t",
                                      VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName="training")["cluster"]["clusterArn"]
    task = ecs.register_task_definition(
        family="labelloop-training", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="2048", memory="8192", containerDefinitions=[
            {"name": "training", "image": "labelloop-training", "essential": True,
             "memory": 8192}],  # moto sums container memory
    )["taskDefinition"]["taskDefinitionArn"]
    for k, v in {"LABELLOOP_TRAINING_CLUSTER": cluster,
                 "LABELLOOP_TRAINING_TASK_DEFINITION": task,
                 "LABELLOOP_TRAINING_SUBNETS": subnet,
                 "LABELLOOP_TRAINING_SECURITY_GROUP": group,
                 "LABELLOOP_FARGATE_MIN_SAMPLES": "6"}.items():
        monkeypatch.setenv(k, v)
    return cluster


def _function(api, samples: int) -> str:
    status, fn, _ = api.call("POST", "/v1/functions", {"name": "f", "input": "Text",
                                                       "output": "Classification"})
    assert status == 200, fn
    fid = fn["id"]
    for name in ("greeting", "farewell"):
        assert api.call("POST", f"/v1/functions/{fid}/labels", {"name": name})[0] == 200
    texts = [("hello there", "greeting"), ("good morning", "greeting"), ("hi friend", "greeting"),
             ("goodbye now", "farewell"), ("see you later", "farewell"), ("bye bye", "farewell")]
    for text, label in texts[:samples]:
        status, body, _ = api.call("POST", f"/v1/functions/{fid}/samples",
                                   {"data": text, "annotation": {"labelName": label}})
        assert status == 200, body
    return fid


def _versions(api, fid: str) -> list[dict]:
    status, body, _ = api.call("GET", f"/v1/functions/{fid}/models")
    assert status == 200, body
    return body


def test_small_functions_train_in_the_lambda(fargate, api):
    fid = _function(api, samples=4)
    api.train()
    assert boto3.client("ecs").list_tasks(cluster=fargate)["taskArns"] == []
    assert [v["version"] for v in _versions(api, fid)] == [1]


def test_large_functions_train_in_the_task_entry_point(fargate, api):
    from labelloop.handlers.training_task import main

    fid = _function(api, samples=6)
    responses = api.train()
    assert responses and all(r["batchItemFailures"] == [] for r in responses)
    ecs = boto3.client("ecs")
    arns = ecs.list_tasks(cluster=fargate)["taskArns"]
    assert len(arns) == 1
    assert _versions(api, fid) == []  # handed over, not trained in the Lambda
    (task,) = ecs.describe_tasks(cluster=fargate, tasks=arns)["tasks"]
    (override,) = task["overrides"]["containerOverrides"]
    assert override["name"] == "training"
    environ = {e["name"]: e["value"] for e in override["environment"]}
    assert fid.removeprefix("function_") in environ[TRAINING_MESSAGE_ENV]

    # What the container runs, with the environment it was started with.
    assert main(environ) == 0
    (version,) = _versions(api, fid)
    assert version["version"] == 1 and version["sampleCount"] == 6
    status, body, _ = api.call("POST", f"/v1/functions/{fid}/invoke", {"data": "bye for now"})
    assert status == 200 and body["labelName"] == "farewell", body


def test_task_entry_point_refuses_a_missing_message():
    from labelloop.handlers.training_task import main

    assert main({}) == 2


# -- one training run per function at a time ----------------------------------------------------

def _deliver_one(api) -> dict:
    """One training message through the real handler, as the event source mapping would."""
    from conftest import CONTEXT

    from labelloop.handlers.training import handler

    sqs, url = boto3.client("sqs"), api.env["LABELLOOP_TRAINING_QUEUE_URL"]
    (m,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                               AttributeNames=["All"])["Messages"]
    result = handler({"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:t",
        "awsRegion": "us-east-1"}]}, CONTEXT)
    assert result["batchItemFailures"] == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return json.loads(m["Body"])


def test_a_second_run_waits_for_the_running_one(api, monkeypatch):
    import time

    from labelloop import container
    from labelloop.usecases import training_run

    monkeypatch.setattr(training_run, "BUSY_RETRY_SECONDS", 0)
    fid = _function(api, samples=4).removeprefix("function_")
    functions = container.deps().functions
    # Another run holds the lease (a parallel delivery, on AWS).
    started = time.time()
    assert functions.begin_training(fid, started, started - 960) is not None
    status, _, _ = api.call("POST", f"/v1/functions/{fid}/samples",
                            {"data": "bye bye", "annotation": {"labelName": "farewell"}})
    assert status == 200
    body = _deliver_one(api)
    assert _versions(api, fid) == []  # did not train beside the running one…
    sqs = boto3.client("sqs")
    queued = sqs.receive_message(QueueUrl=api.env["LABELLOOP_TRAINING_QUEUE_URL"],
                                 MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert body in [json.loads(m["Body"]) for m in queued]  # …but queued itself again
    functions.end_training(fid, started)
    api.train()
    # One run took the pending changes; the other request found nothing left to do.
    (version,) = _versions(api, fid)
    assert version["sampleCount"] == 5


def test_a_duplicate_delivery_trains_once(api):
    fid = _function(api, samples=4).removeprefix("function_")
    sqs, url = boto3.client("sqs"), api.env["LABELLOOP_TRAINING_QUEUE_URL"]
    body = _deliver_one(api)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))  # SQS: at least once
    api.train()
    assert [v["version"] for v in _versions(api, fid)] == [1]


def test_a_dead_runs_lease_expires(api):
    import time

    from labelloop import container

    fid = _function(api, samples=4).removeprefix("function_")
    functions = container.deps().functions
    long_ago = time.time() - 3600
    assert functions.begin_training(fid, long_ago, long_ago - 960) is not None
    functions.request_training(fid, time.time(), 0)  # pending again; the lease holder is dead
    api.train()
    assert [v["version"] for v in _versions(api, fid)] == [1]
