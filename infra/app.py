"""CDK app entry point (`cdk synth` / `cdk deploy` read it through cdk.json).

The stack's constructs (HTTP API, Lambdas behind `live` aliases, layers from layers/, tables,
bucket, queues) are the CDK issue's work; until then this app synthesizes an empty stack so
that the layout and cdk.json are in place.
"""

import aws_cdk as cdk


def main() -> None:
    app = cdk.App()
    cdk.Stack(app, "Labelloop", description="labelloop: classification functions with "
              "integrated active learning")
    app.synth()


if __name__ == "__main__":
    main()
