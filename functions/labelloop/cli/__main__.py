"""`python -m labelloop.cli`: as the `labelloop` script."""

from labelloop.cli.main import main

main()
