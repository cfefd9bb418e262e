"""The operator's commands: the CLI, verify, dead letters, schemas."""
