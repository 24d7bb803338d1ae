"""Moved to `agents.app.cli` (0.2); ``python -m agents.cli`` and this name are kept for one release."""

import sys

if __name__ == "__main__":  # python -m agents.cli / torchrun -m agents.cli: run the CLI, no warning
    from agents.app.cli import main

    sys.exit(main())
else:
    from agents._moved import alias

    alias(__name__, "agents.app.cli")
