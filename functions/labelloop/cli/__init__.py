"""The `labelloop` command line: `main.py` composes the parser; each command group is a module
whose commands are plain functions with typed parameters, registered on the parser by a thin
adapter (`add_parser`) that only maps the parsed options onto them."""
