import pytest

from eval_runner.cli import COMMAND_TABLE, main
from eval_runner.errors import ExitCode
from eval_runner.settings import S3Settings, ShardSettings


def test_cli_help_lists_every_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for group in ["dataset", "review", "fleet", "versions"]:
        assert group in out


def test_every_group_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMAND_TABLE:
        assert main([name, "--help"]) == 0
        assert "Usage:" in capsys.readouterr().out


def test_the_command_table_is_every_command_with_its_own_help() -> None:
    """cli.py lists commands without importing them; the list must be exactly what the modules define."""
    import importlib
    import pkgutil

    import eval_runner.commands

    defined = {}
    for module_info in pkgutil.iter_modules(eval_runner.commands.__path__):
        module = importlib.import_module(f"eval_runner.commands.{module_info.name}")
        defined.update({str(c.name): c for c in module.commands})
    assert sorted(COMMAND_TABLE) == sorted(defined)
    for name, (_, _, short_help) in COMMAND_TABLE.items():
        assert short_help == defined[name].get_short_help_str(limit=300), name


def test_help_imports_no_command_module() -> None:
    """`eval-runner --help` (and every pod's start-up) pays only for the command it runs."""
    import subprocess
    import sys

    probe = (
        "import sys; from eval_runner.cli import main; main(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith('eval_runner.commands.') or m in ('polars', 'dulwich')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_a_config_error_exit() -> None:
    assert main(["no-such-command"]) == ExitCode.CONFIG


def test_s3_endpoint_with_a_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="without a scheme"):
        S3Settings(endpoint="http://s3:9000", access_key="a", secret_key="b")


def test_shard_urls_split_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_EVAL_SHARDS_URLS", "http://a:1, http://b:2,")
    assert ShardSettings().urls == ("http://a:1", "http://b:2")


def test_missing_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from eval_runner.cli import Runtime
    from eval_runner.errors import ConfigError

    for name in ["FLEET_EVAL_S3_ENDPOINT", "FLEET_EVAL_S3_ACCESS_KEY", "FLEET_EVAL_S3_SECRET_KEY"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="FLEET_EVAL_S3_ENDPOINT: Field required"):
        Runtime().s3_settings()


def test_secrets_do_not_print() -> None:
    settings = S3Settings(endpoint="s3:9000", access_key="AKIA", secret_key="very-secret")
    assert "very-secret" not in repr(settings)


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_shard_token_means_no_token(monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    # A Secret with an empty token key must not turn into an "Authorization: Bearer " header.
    monkeypatch.setenv("FLEET_EVAL_SHARDS_URLS", "http://a:1")
    monkeypatch.setenv("FLEET_EVAL_SHARDS_TOKEN", empty)
    assert ShardSettings().token is None
    monkeypatch.setenv("FLEET_EVAL_SHARDS_TOKEN", "t0ken")
    token = ShardSettings().token
    assert token is not None and token.get_secret_value() == "t0ken"
