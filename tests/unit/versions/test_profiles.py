"""Which locked pin set a library runs in, read from the committed exports of uv.lock."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from eval_runner.errors import ConfigError
from eval_runner.runner_profiles import RunnerContext, pins_of

REQUIREMENTS = Path(__file__).resolve().parents[3] / "images" / "runner" / "requirements"

EXPORT = """\
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:aa
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:bb
pyarrow==25.0.1 \\
    --hash=sha256:cc
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:dd
"""


def test_pins_follow_the_markers_of_the_image() -> None:
    assert pins_of(EXPORT) == {"numpy": Version("2.4.6"), "pyarrow": Version("25.0.1")}


@pytest.fixture
def context(tmp_path: Path) -> RunnerContext:
    (tmp_path / "requirements").mkdir()
    for name in ("runtime", "runtime-numpy1", "core", "tools"):
        (tmp_path / "requirements" / f"{name}.txt").write_text((REQUIREMENTS / f"{name}.txt").read_text())
    (tmp_path / "CONTEXT_DIGEST").write_text("c" * 64 + "\n")
    (tmp_path / "LOCK_SHA256").write_text("d" * 64 + "\n")
    return RunnerContext.load(tmp_path)


def test_the_committed_exports_give_numpy_2_and_numpy_1(context: RunnerContext) -> None:
    assert context.profiles["runtime"]["numpy"].major == 2
    assert context.profiles["runtime-numpy1"]["numpy"].major == 1
    assert context.digest == "c" * 64


@pytest.mark.parametrize(
    ("requirements", "profile"),
    [
        (["numpy>=2.0,<3", "pyarrow>=17"], "runtime"),  # battery-lib 0.9.0
        (["numpy>=1.24,<2"], "runtime-numpy1"),  # battery-lib 0.6.0
        (["numpy>=1.24,<3", "pyarrow>=17"], "runtime"),  # either: the newest wins
        (["numpy<2; python_version >= '3.12'", "pyarrow"], "runtime"),  # markers that do not apply
        ([], "runtime"),
    ],
)
def test_a_library_runs_in_the_first_profile_its_requirements_fit(
    context: RunnerContext, requirements: list[str], profile: str
) -> None:
    assert context.profile_for("battery-lib x", [Requirement(r) for r in requirements]) == profile


def test_a_library_no_profile_fits_is_refused_naming_the_requirement(context: RunnerContext) -> None:
    with pytest.raises(ConfigError, match=r"battery-lib 9\.9\.9 cannot run.*scipy.* is not in the lock"):
        context.profile_for("battery-lib 9.9.9", [Requirement("numpy>=2"), Requirement("scipy>=1.10")])
    with pytest.raises(ConfigError, match=r"numpy<1\.20 but the lock pins numpy 1\.26"):
        context.profile_for("battery-lib 0.1.0", [Requirement("numpy<1.20")])


def test_an_incomplete_context_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="runner build context"):
        RunnerContext.load(tmp_path)
