"""Data access: every DynamoDB, S3, SQS, ECS and Secrets Manager call of the app, one module
per aggregate (`container.py` builds them from one set of clients; `resources.py` creates the
resources for the local stack and the emulator).

DynamoDB errors become domain errors at this edge (a failed condition is a `Conflict`, a
missing item a `NotFound`). Whole items cross it as the pydantic models of `labelloop.domain`;
reads over a whole function come back as its typed projections (`SampleFacts`,
`SampleVector`, `TrainingRow`). Layout and access patterns: docs/storage.md.
"""
