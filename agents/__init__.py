"""Learning side of textgen-env: LM policies and RL agents that train them through the env loop."""
