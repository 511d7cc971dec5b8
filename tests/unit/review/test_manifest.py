"""Review manifests: every bad case fails with its line number; BOM and CRLF are fine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eval_runner.hashing import sha256_bytes
from eval_runner.review.manifest import (
    ReviewError,
    build_meta,
    parse_review_csv,
    render_review_csv,
    validate_review,
    validate_review_csv,
)

IDS = frozenset({"a/2026-04", "b/2026-04", "c/2026-04"})
HASH = "1" * 64


def test_bom_crlf_and_any_case_are_accepted_and_unmentioned_are_counted() -> None:
    data = "\ufeffsample_id,use_for_training\r\na/2026-04,TRUE\r\nb/2026-04,False\r\n".encode()
    review = validate_review_csv(data, sample_ids=IDS)
    assert review.approved == {"a/2026-04"}
    assert review.rejected == {"b/2026-04"}
    assert review.unmentioned == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty"),
        ("id,use\na/2026-04,true\n", "line 1: header is 'id,use', expected 'sample_id,use_for_training'"),
        (
            "sample_id,use_for_training\na/2026-04,yes\n",
            "line 2: use_for_training 'yes' is not true or false",
        ),
        ("sample_id,use_for_training\na/2026-04,1\n", "line 2: use_for_training '1' is not true or false"),
        (
            "sample_id,use_for_training\na/2026-04,true\nb/2026-04,true\na/2026-04,false\n",
            "line 4: duplicate sample_id 'a/2026-04' (first on line 2)",
        ),
        (
            "sample_id,use_for_training\nz/2026-04,true\n",
            "line 2: sample_id 'z/2026-04' is not in the dataset",
        ),
        ("sample_id,use_for_training\na/2026-04\n", "line 2: expected 2 fields"),
    ],
)
def test_bad_csv_fails_with_line_and_message(text: str, message: str) -> None:
    with pytest.raises(ReviewError) as caught:
        parse_review_csv(text.encode(), sample_ids=IDS)
    assert message in str(caught.value)


def test_all_problems_are_reported_at_once() -> None:
    text = "sample_id,use_for_training\r\nz/2026-04,true\r\na/2026-04,maybe\r\n"
    with pytest.raises(ReviewError) as caught:
        parse_review_csv(text.encode(), sample_ids=IDS)
    assert [p.line for p in caught.value.problems] == [2, 3]


def _meta(csv_data: bytes, dataset_hash: str) -> bytes:
    review = validate_review_csv(csv_data, sample_ids=IDS)
    meta = build_meta(
        month="2026-04",
        reviewer="ana",
        reviewed_at=datetime(2026, 5, 2, tzinfo=UTC),
        dataset_hash=dataset_hash,
        csv_data=csv_data,
        review=review,
    )
    return meta.to_json_bytes()


def test_review_for_another_dataset_hash_names_the_json_line() -> None:
    csv_data = render_review_csv({"a/2026-04": True})
    meta = _meta(csv_data, "2" * 64)
    with pytest.raises(ReviewError) as caught:
        validate_review(csv_data, meta, revision=1, month="2026-04", dataset_hash=HASH, sample_ids=IDS)
    line = next(n for n, text in enumerate(meta.decode().splitlines(), 1) if '"dataset_hash"' in text)
    assert f"review.json line {line}: written for dataset hash {'2' * 64}" in str(caught.value)


def test_csv_changed_after_saving_is_detected() -> None:
    csv_data = render_review_csv({"a/2026-04": True})
    meta = _meta(csv_data, HASH)
    changed = render_review_csv({"a/2026-04": False})
    with pytest.raises(ReviewError, match=r"review\.csv changed after it was saved"):
        validate_review(changed, meta, revision=1, month="2026-04", dataset_hash=HASH, sample_ids=IDS)
    review = validate_review(csv_data, meta, revision=1, month="2026-04", dataset_hash=HASH, sample_ids=IDS)
    assert review.review_hash == sha256_bytes(csv_data) and review.revision == 1


def test_bad_json_fields_are_reported() -> None:
    with pytest.raises(ReviewError, match="reviewer"):
        validate_review(b"", b'{"month": "2026-04"}', revision=1, month="2026-04", dataset_hash=HASH, sample_ids=IDS)


def test_render_is_canonical() -> None:
    assert render_review_csv({"b": False, "a": True}) == b"sample_id,use_for_training\na,true\nb,false\n"


def test_bytes_that_are_not_utf8_name_their_line_and_column() -> None:
    latin1 = "sample_id,use_for_training\na/2026-04,true\nb/2026-04,true # revisé\n".encode("latin-1")
    with pytest.raises(ReviewError) as caught:
        parse_review_csv(latin1, sample_ids=IDS)
    (problem,) = caught.value.problems
    assert problem.line == 3
    assert "column 23: byte 0xe9 is not UTF-8" in str(caught.value)


def test_review_json_errors_always_name_a_line() -> None:
    bad_bytes = b'{\n  "month": "2026-04",\n  "reviewer": "Jos\xe9"\n}\n'
    broken = b'{\n  "month": "2026-04",\n  "reviewer": \n'
    for data, line in ((bad_bytes, 3), (broken, 4)):
        with pytest.raises(ReviewError) as caught:
            validate_review(b"", data, revision=1, month="2026-04", dataset_hash=HASH, sample_ids=IDS)
        assert [p.line for p in caught.value.problems] == [line], str(caught.value)
