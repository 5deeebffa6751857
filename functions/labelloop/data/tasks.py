"""ECS: the Fargate training task, for functions too large for the training Lambda."""

from __future__ import annotations

from dataclasses import dataclass

# The Fargate training task reads its training message from this variable.
TRAINING_MESSAGE_ENV = "LABELLOOP_TRAINING_MESSAGE"


@dataclass(frozen=True)
class TrainingTask:
    cluster: str
    task_definition: str
    container: str
    subnets: list[str]
    security_group: str


class TrainingTasks:
    def __init__(self, ecs):
        self._ecs = ecs

    def start(self, task: TrainingTask, message_json: str) -> str:
        """Run the Fargate training task with this message; its task ARN."""
        resp = self._ecs.run_task(
            cluster=task.cluster, taskDefinition=task.task_definition, launchType="FARGATE",
            count=1, networkConfiguration={"awsvpcConfiguration": {
                "subnets": task.subnets, "securityGroups": [task.security_group],
                # Public subnet, no NAT: the public IP is how it reaches AWS's APIs.
                "assignPublicIp": "ENABLED"}},
            overrides={"containerOverrides": [{"name": task.container, "environment": [
                {"name": TRAINING_MESSAGE_ENV, "value": message_json}]}]})
        if resp.get("failures") or not resp.get("tasks"):
            raise RuntimeError(f"RunTask failed: {resp.get('failures')}")
        return resp["tasks"][0]["taskArn"]
