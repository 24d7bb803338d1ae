"""Adapters for other trainers: TRL reward functions and datasets (`trl`), an OpenEnv server (`openenv`).

The top layer of textgen_env: the adapters import the env shells, rewards and the feedback page's guard; nothing
below imports them. Each needs the ``interop`` extra (``pip install "textgen-env[interop]"``), imported lazily so
that a missing package raises `gymnasium.error.DependencyNotInstalled` with the pip command.
"""
