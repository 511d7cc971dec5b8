"""Label parsing, tag derivation and the choice of version among those an index offers."""

from __future__ import annotations

import pytest
from packaging.version import Version

from eval_runner.errors import ConfigError
from eval_runner.package_index import files_in_page, versions_offered
from eval_runner.resolution import image_tag, parse_label, pick, split_labels


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("0.9.0", "release", "0.9.0"),
        ("v0.9.0", "release", "0.9.0"),
        (" V1.0 ", "release", "1.0"),
        ("0.10.0rc1", "release", "0.10.0rc1"),
        ("latest", "latest", "latest"),
        ("git:main", "git", "main"),
        ("git:feature/fast-path", "git", "feature/fast-path"),
    ],
)
def test_labels_parse(text: str, kind: str, value: str) -> None:
    label = parse_label(text)
    assert (label.kind, label.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "newest", "v", "git:", "git:../etc", "0.9.0; rm -rf /"])
def test_bad_labels_are_config_errors_naming_the_label(text: str) -> None:
    with pytest.raises(ConfigError, match="version label"):
        parse_label(text)


CONTEXT_A = "a" * 64
CONTEXT_B = "b" * 64


def test_tag_carries_library_runner_and_context() -> None:
    assert image_tag("0.9.0", "0.1.0", CONTEXT_A) == "0.9.0-runner-0.1.0-aaaaaaaaaaaa"
    assert image_tag("git-0123456789ab", "0.1.0", CONTEXT_A) == "git-0123456789ab-runner-0.1.0-aaaaaaaaaaaa"


def test_tag_is_stable_and_distinct_per_library_runner_and_context() -> None:
    tags = {
        image_tag(lib, runner, context)
        for lib in ("0.8.0", "0.9.0")
        for runner in ("0.1.0", "0.2.0")
        for context in (CONTEXT_A, CONTEXT_B)
    }
    assert len(tags) == 8
    assert image_tag("0.9.0", "0.1.0", CONTEXT_A) == image_tag("0.9.0", "0.1.0", CONTEXT_A)


def test_local_versions_become_valid_tags() -> None:
    assert image_tag("1.0+abc.1", "0.1.0", CONTEXT_A) == "1.0_abc.1-runner-0.1.0-aaaaaaaaaaaa"


PAGE = """<!DOCTYPE html><html><body>
<a href="/packages/battery_lib-0.6.0-py3-none-any.whl#sha256=aa">battery_lib-0.6.0-py3-none-any.whl</a>
<a href="/packages/battery-lib-0.8.0.tar.gz">battery-lib-0.8.0.tar.gz</a>
<a href="/packages/battery_lib-0.9.0-py3-none-any.whl">battery_lib-0.9.0-py3-none-any.whl</a>
<a href="/packages/battery_lib-1.0.0rc1-py3-none-any.whl">battery_lib-1.0.0rc1-py3-none-any.whl</a>
<a data-yanked="broken" href="/p/battery_lib-0.9.1-py3-none-any.whl">battery_lib-0.9.1-py3-none-any.whl</a>
<a href="/packages/other_lib-5.0-py3-none-any.whl">other_lib-5.0-py3-none-any.whl</a>
</body></html>"""


def versions_in_page(page: str) -> dict[Version, bool]:
    return versions_offered(files_in_page(page, "http://idx/simple/battery-lib/"), "battery-lib")


def test_page_lists_files_with_their_hashes_and_absolute_urls() -> None:
    files = files_in_page(PAGE, "http://idx/simple/battery-lib/")
    first = files[0]
    assert (first.filename, first.url, first.sha256, first.yanked) == (
        "battery_lib-0.6.0-py3-none-any.whl",
        "http://idx/packages/battery_lib-0.6.0-py3-none-any.whl",
        "aa",
        False,
    )
    assert [f.sha256 for f in files[1:3]] == [None, None]
    assert files[4].yanked


def test_page_lists_versions_and_yanks() -> None:
    offered = versions_in_page(PAGE)
    assert offered == {
        Version("0.6.0"): False,
        Version("0.8.0"): False,
        Version("0.9.0"): False,
        Version("1.0.0rc1"): False,
        Version("0.9.1"): True,
    }


def test_latest_skips_prereleases_and_yanked() -> None:
    assert pick(parse_label("latest"), versions_in_page(PAGE), "idx") == Version("0.9.0")


def test_exact_label_may_name_a_prerelease() -> None:
    assert pick(parse_label("v1.0.0rc1"), versions_in_page(PAGE), "idx") == Version("1.0.0rc1")


def test_unknown_release_names_what_exists() -> None:
    with pytest.raises(ConfigError, match=r"0\.7\.0 is not on idx .*0\.9\.0"):
        pick(parse_label("0.7.0"), versions_in_page(PAGE), "idx")


def test_latest_on_an_empty_index_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no final"):
        pick(parse_label("latest"), {}, "idx")


@pytest.mark.parametrize(
    "values",
    [("0.9.0", "latest"), ("0.9.0,latest",), ('["0.9.0", "latest"]',), (" 0.9.0 , latest ,",)],
)
def test_labels_come_in_every_shape_argo_passes(values: tuple[str, ...]) -> None:
    assert split_labels(values) == ["0.9.0", "latest"]


def test_malformed_json_labels_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="JSON"):
        split_labels(['["0.9.0"'])
