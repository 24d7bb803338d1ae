"""Old module paths of the 0.1 layout, kept for one release: each is the new module under its old name."""

from __future__ import annotations

import importlib
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Make module `old` the module `new` (same object, so attributes and patches are shared), with a warning."""
    warnings.warn(f"{old} moved to {new}; import it from there ({old} goes away in 0.3)", DeprecationWarning, 3)
    sys.modules[old] = importlib.import_module(new)
