"""`python -m eval_runner`: the same as the eval-runner console script."""

from eval_runner.cli import run

run()
