"""The wiring and the entry points: each command builds the product's objects from the settings
tree here (`run`, `plan`/`status`/`acknowledge`/`resync`, `demo`), and every Netmaker write
goes through the one pipeline built in pipeline.py. No other package may build an `Executor`
(an import contract in pyproject.toml)."""
