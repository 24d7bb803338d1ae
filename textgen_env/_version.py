"""The package's one version string, read by ``pyproject.toml`` (setuptools' dynamic version) and ``--version``."""

__version__ = "0.2.0"
