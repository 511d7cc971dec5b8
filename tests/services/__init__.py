"""Real services on loopback for integration tests and `make services`: S3, PostgreSQL, MLflow.

Each is a real server process on a free port, started from binaries installed by `make setup`.
A missing binary fails with the command that installs it.
"""
