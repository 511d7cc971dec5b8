"""fleet-eval: evaluate battery-library versions on field data and roll the winner out to the fleet."""

import os

__version__ = "0.1.0"

# MLflow's telemetry client starts when mlflow is first imported, and on a cluster with no route out it
# gives up from its own thread by popping _MLFLOW_TELEMETRY_SESSION_ID from os.environ. A request thread
# iterating os.environ at that moment (urllib reads the proxy variables on every call) then fails with
# KeyError: CI lost an evaluation's log-batch to exactly that. Set here, before any eval_runner module can
# import mlflow, so every entry point (pods, CLI, tests) is covered; it overrides the caller on purpose.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
