"""The package version, read by ``pyproject.toml`` and ``daskflow --version``."""

__version__ = "0.1.0"
