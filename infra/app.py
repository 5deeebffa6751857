"""CDK app entry point (`scripts/cdk.sh synth|deploy` reads it through cdk.json).

    scripts/cdk.sh deploy -c stage=prod [-c settings='{"alarm_email": "ops@example.com"}']

Stage settings: infra/stage.py. The layers must be built first (scripts/build_layers.py).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

import aws_cdk as cdk  # noqa: E402

from infra.stack import LabelloopStack  # noqa: E402
from infra.stage import from_context  # noqa: E402


def build(app: cdk.App) -> LabelloopStack:
    settings = from_context(app.node.try_get_context)
    return LabelloopStack(app, f"Labelloop-{settings.stage}", settings)


def main() -> None:
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
