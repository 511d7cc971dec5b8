"""Reviews against real S3 on a month built from the simulated sources: CLI, UI, and the evaluation's read."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import eval_runner.review
from eval_runner.cli import main
from eval_runner.dataset.reader import LoadedDataset
from eval_runner.errors import ExitCode
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month, review_csv_key, review_json_key, review_prefix
from eval_runner.review.reader import load_review, review_revisions, save_review
from eval_runner.storage import S3ObjectStore

MONTH = Month(2026, 4)
APP = str(Path(eval_runner.review.__file__).parent / "app.py")


def _ids(built: LoadedDataset) -> list[str]:
    return sorted(built.dataset["sample_id"].to_list())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["sample,use", "{0},true"], "line 1: header is 'sample,use'"),
        (["sample_id,use_for_training", "{0},yes"], "line 2: use_for_training 'yes' is not true or false"),
        (["sample_id,use_for_training", "{0},true", "{1},false", "{0},false"], "line 4: duplicate sample_id"),
        (["sample_id,use_for_training", "{0},true", "ghost/2026-04,true"], "line 3: sample_id 'ghost/2026-04' is not"),
    ],
)
def test_bad_review_files_fail_with_line_and_publish_nothing(
    built: LoadedDataset,
    object_store: S3ObjectStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[str],
    message: str,
) -> None:
    ids = _ids(built)
    path = tmp_path / "review.csv"
    path.write_text("\r\n".join(row.format(*ids) for row in rows) + "\r\n")
    assert main(["review", "validate", "--month", str(MONTH), "--file", str(path)]) == ExitCode.DATA
    assert message in capsys.readouterr().err
    assert main(["review", "submit", "--month", str(MONTH), "--file", str(path), "--reviewer", "ana"]) == ExitCode.DATA
    assert message in capsys.readouterr().err
    assert object_store.list(review_prefix(MONTH)) == []


def test_submitted_review_is_what_evaluation_reads(
    built: LoadedDataset, object_store: S3ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(built)
    path = tmp_path / "review.csv"
    # A spreadsheet export: BOM, CRLF, mixed case; the last sample is left out.
    path.write_bytes(
        (
            "\ufeffsample_id,use_for_training\r\n"
            + "".join(f"{s},{'TRUE' if i % 2 else 'False'}\r\n" for i, s in enumerate(ids[:-1]))
        ).encode()
    )
    assert main(["review", "validate", "--month", str(MONTH), "--file", str(path)]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["unmentioned"] == 1
    assert main(["review", "submit", "--month", str(MONTH), "--file", str(path), "--reviewer", "ana"]) == ExitCode.OK
    assert "saved review of 2026-04 by ana" in capsys.readouterr().out
    assert main(["review", "validate", "--month", str(MONTH)]) == ExitCode.OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reviewer"] == "ana"
    assert "1 sample(s) not mentioned" in captured.err

    review = load_review(object_store, MONTH, built.content_hash)
    assert review.approved == {s for i, s in enumerate(ids[:-1]) if i % 2}
    assert review.unmentioned == 1 and ids[-1] not in review.approved
    assert review.reviewer == "ana"


def test_review_written_for_another_dataset_hash_is_refused(
    built: LoadedDataset, object_store: S3ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "review.csv"
    path.write_text(f"sample_id,use_for_training\n{_ids(built)[0]},true\n")
    assert main(["review", "submit", "--month", str(MONTH), "--file", str(path), "--reviewer", "ana"]) == ExitCode.OK
    meta = json.loads(object_store.get_bytes(review_json_key(MONTH, 1)))
    meta["dataset_hash"] = "0" * 64
    object_store.put_bytes(review_json_key(MONTH, 1), json.dumps(meta, indent=2).encode(), overwrite=True)
    capsys.readouterr()
    assert main(["review", "validate", "--month", str(MONTH)]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "review.json line" in err and f"written for dataset hash {'0' * 64}" in err


def test_review_through_the_ui_on_real_s3(built: LoadedDataset, object_store: S3ObjectStore) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["store"] = object_store
    at.run()
    assert not at.exception
    total = built.dataset.height
    assert f"Reviewed 0 / {total}" in at.get("progress")[0].proto.text
    assert len(at.get("image")) == 1
    at.button(key="bulk_suggest").click().run()
    assert f"Reviewed {total} / {total}" in at.get("progress")[0].proto.text
    at.sidebar.text_input(key="reviewer").input("Ana").run()
    at.button(key="save").click().run()
    assert not at.exception
    review = load_review(object_store, MONTH, built.content_hash)
    suggested = set(built.dataset.filter("suggest_use")["sample_id"].to_list())
    assert review.approved == suggested
    assert review.unmentioned == 0 and review.reviewer == "Ana"


def test_validate_outputs_the_review_hash_and_concurrent_saves_on_s3_are_distinct_revisions(
    built: LoadedDataset, object_store: S3ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(built)[:6]
    saves = [{s: i <= n for i, s in enumerate(ids)} for n in range(6)]  # six different reviews
    barrier = threading.Barrier(len(saves))
    saved: list[int] = []

    def save(n: int) -> None:
        barrier.wait()  # start together, so the saves race for the same revision numbers
        review = save_review(object_store, MONTH, saves[n], reviewer=f"reviewer-{n}", reviewed_at=datetime.now(UTC),
                             dataset_hash=built.content_hash, sample_ids=_ids(built))  # fmt: skip
        saved.append(review.revision)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(len(saves))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    revisions = review_revisions(object_store, MONTH)
    assert sorted(saved) == revisions == list(range(1, len(saves) + 1))  # every save kept, none replaced another
    reviewers = {load_review(object_store, MONTH, built.content_hash, revision=r).reviewer for r in revisions}
    assert reviewers == {f"reviewer-{n}" for n in range(len(saves))}
    capsys.readouterr()
    assert main(["review", "validate", "--month", str(MONTH)]) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    current = load_review(object_store, MONTH, built.content_hash)
    assert summary["revision"] == revisions[-1] == current.revision
    assert (
        summary["review_hash"]
        == current.review_hash
        == sha256_bytes(object_store.get_bytes(review_csv_key(MONTH, current.revision)))
    )
