"""Lambda entry points: thin, each hands its event to use cases."""
