"""The CDK app: one stack of labelloop's resources, one construct per capability."""
