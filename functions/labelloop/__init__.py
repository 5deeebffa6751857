"""labelloop: self-hosted classification functions with integrated active learning."""

__version__ = "0.1.0"
