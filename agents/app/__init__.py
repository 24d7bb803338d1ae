"""The application a person runs: the `textgen-env` CLI, the main job, run folders, logs, reports and the demo.

The only layer that parses arguments; no algorithm or core module imports it.
"""
