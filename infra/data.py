"""Tables, the bucket and the signing key, declared from `labelloop.resources` (the same
description the local stack creates in moto)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra.stage import StageSettings
from labelloop.resources import RESOURCES, bucket_physical


class Data(Construct):
    def __init__(self, scope: Construct, cid: str, settings: StageSettings):
        super().__init__(scope, cid)
        removal = cdk.RemovalPolicy.RETAIN if settings.retain_data else cdk.RemovalPolicy.DESTROY
        self.tables: dict[str, ddb.Table] = {}
        for spec in RESOURCES.tables:
            table = ddb.Table(
                self, f"{spec.name.capitalize()}Table",
                table_name=RESOURCES.physical(settings.stage, spec.name),
                partition_key=ddb.Attribute(name=spec.hash_key, type=ddb.AttributeType.STRING),
                sort_key=(ddb.Attribute(name=spec.range_key, type=ddb.AttributeType.STRING)
                          if spec.range_key else None),
                billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                time_to_live_attribute=spec.ttl_attribute,
                removal_policy=removal)
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=ddb.Attribute(name=index.hash_key,
                                                type=ddb.AttributeType.STRING),
                    sort_key=ddb.Attribute(name=index.range_key, type=ddb.AttributeType.STRING),
                    projection_type=ddb.ProjectionType.ALL)
            self.tables[spec.name] = table

        (spec,) = RESOURCES.buckets
        self.bucket_spec = spec
        self.bucket = s3.Bucket(
            self, "ModelsBucket",
            bucket_name=bucket_physical(settings.stage, cdk.Aws.ACCOUNT_ID, spec),
            versioned=spec.versioned, encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            # Model versions are immutable and overwritten never; what versioning keeps are
            # deleted functions' files, for a while.
            lifecycle_rules=[s3.LifecycleRule(
                noncurrent_version_expiration=cdk.Duration.days(30),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1))],
            removal_policy=removal, auto_delete_objects=not settings.retain_data)

        (secret,) = RESOURCES.secrets
        self.secret_spec = secret
        self.secret_name = RESOURCES.physical(settings.stage, secret.name)
        self.signing_secret = sm.Secret(
            self, "SigningKey", secret_name=self.secret_name,
            description="HMAC key that signs labelloop's bearer tokens",
            generate_secret_string=sm.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
            removal_policy=removal)

    def environment(self) -> dict[str, str]:
        """The env var of each resource -> its physical name (each function takes those its
        settings model declares: `infra/environment.py`)."""
        env = {spec.env: self.tables[spec.name].table_name for spec in RESOURCES.tables}
        env[self.bucket_spec.env] = self.bucket.bucket_name
        # The name as a plain string: `secret_name` would parse it out of the ARN, which an
        # emulator's Ref does not return (ministack's Ref is the name).
        env[self.secret_spec.env] = self.secret_name
        return env
