"""Command modules of eval-runner; each exports ``commands``, the top-level commands it defines.

cli.py imports a module only when one of its commands runs (eval_runner.cli.COMMAND_TABLE).
"""
