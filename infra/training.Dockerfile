# The Fargate training task: the same training code as the training Lambda, without Lambda's
# memory and 15-minute limits. Built by `cdk deploy` (needs Docker there); its context is the
# repository, filtered to what is copied below.
FROM public.ecr.aws/docker/library/python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY functions ./functions
RUN pip install --no-cache-dir ".[train]"
ENTRYPOINT ["python", "-m", "labelloop.handlers.training_task"]
