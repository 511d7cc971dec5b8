"""Review manifests (pure): parse and validate review.csv + review.json, and render them canonically.

review.csv is ``sample_id,use_for_training`` with true/false (any case); a BOM and CRLF line ends are
accepted because reviewers export from spreadsheets. Every problem is reported with its line number,
all at once, so a reviewer fixes a file in one round.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import AwareDatetime, Field, ValidationError

from eval_runner.errors import DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.stored import StoredRecord

HEADER = ("sample_id", "use_for_training")
_VALUES = {"true": True, "false": False}
_MAX_SHOWN = 50  # a file with thousands of bad lines names the first ones, and says how many in all


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a review file, at a line (1-based) when it has one."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


class ReviewError(DataError):
    """A review manifest that must not be used; carries every problem found."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        shown = "\n".join(f"  {name} {p}" for p in problems[:_MAX_SHOWN])
        more = f"\n  ... and {len(problems) - _MAX_SHOWN} more" if len(problems) > _MAX_SHOWN else ""
        super().__init__(f"{name}: {len(problems)} problem(s):\n{shown}{more}")


class ReviewMeta(StoredRecord):
    """review.json: who reviewed, when, and which dataset (content hash) and review.csv it vouches for."""

    record_type: ClassVar[str] = "review meta"  # unused: parse_review_meta words its own errors

    month: str
    reviewer: str = Field(min_length=1)
    reviewed_at: AwareDatetime
    dataset_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    review_csv_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    approved: int = Field(ge=0)
    rejected: int = Field(ge=0)

    @classmethod
    def from_json_bytes(cls, data: bytes, *, name: str) -> ReviewMeta:
        """Parse review.json as :func:`parse_review_meta` does: a reviewer fixes it by the lines named."""
        return parse_review_meta(data, name=name)


@dataclass(frozen=True)
class ReviewDecisions:
    """review.csv validated against its dataset: the samples it approves or rejects, and how many it omits."""

    decisions: Mapping[str, bool]
    unmentioned: int  # dataset samples the file does not mention: not approved

    @property
    def approved(self) -> frozenset[str]:
        """Sample ids approved for use (use_for_training=true)."""
        return frozenset(s for s, use in self.decisions.items() if use)

    @property
    def rejected(self) -> frozenset[str]:
        """Sample ids explicitly rejected."""
        return frozenset(s for s, use in self.decisions.items() if not use)


@dataclass(frozen=True)
class Review:
    """A published review revision, valid for its dataset: review.json's record and review.csv's decisions.

    The one review type readers get: review.json names the dataset and the review.csv bytes it vouches
    for, and both were checked against each other and against the dataset when it was made.
    """

    meta: ReviewMeta
    decisions: ReviewDecisions
    revision: int

    @property
    def month(self) -> str:
        """The month reviewed, YYYY-MM."""
        return self.meta.month

    @property
    def dataset_hash(self) -> str:
        """The content hash of the dataset build the review applies to."""
        return self.meta.dataset_hash

    @property
    def review_hash(self) -> str:
        """The review's identity: sha256 of its review.csv (what evaluations are keyed by)."""
        return self.meta.review_csv_sha256

    @property
    def reviewer(self) -> str:
        """Who saved the review."""
        return self.meta.reviewer

    @property
    def reviewed_at(self) -> datetime:
        """When it was saved."""
        return self.meta.reviewed_at

    @property
    def approved(self) -> frozenset[str]:
        """Sample ids approved for use."""
        return self.decisions.approved

    @property
    def rejected(self) -> frozenset[str]:
        """Sample ids explicitly rejected."""
        return self.decisions.rejected

    @property
    def unmentioned(self) -> int:
        """Dataset samples the review does not mention: treated as not approved."""
        return self.decisions.unmentioned


def parse_review_csv(data: bytes, *, sample_ids: Collection[str], name: str = "review.csv") -> dict[str, bool]:
    """Parse review.csv against the dataset's sample ids; raise ReviewError listing every problem."""
    text = _utf8_text(data, name, encoding="utf-8-sig")  # utf-8-sig drops a leading BOM
    lines = text.splitlines()  # splits CRLF, LF and CR alike
    if not lines or not lines[0].strip():
        raise ReviewError(name, [Problem(1, f"empty; expected the header {','.join(HEADER)}")])
    header = tuple(field.strip() for field in next(csv.reader([lines[0]])))
    if header != HEADER:
        raise ReviewError(name, [Problem(1, f"header is {','.join(header)!r}, expected {','.join(HEADER)!r}")])
    known = sample_ids if isinstance(sample_ids, (set, frozenset)) else set(sample_ids)
    decisions: dict[str, bool] = {}
    first_seen: dict[str, int] = {}
    problems: list[Problem] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # blank lines (often a trailing one) carry no decision
        fields = [field.strip() for field in next(csv.reader([line]))]
        if len(fields) != len(HEADER):
            problems.append(Problem(number, f"expected 2 fields (sample_id,use_for_training), found {len(fields)}"))
            continue
        sample_id, value = fields
        use = _VALUES.get(value.lower())
        if not sample_id:
            problems.append(Problem(number, "sample_id is empty"))
        elif sample_id in first_seen:
            problems.append(
                Problem(number, f"duplicate sample_id {sample_id!r} (first on line {first_seen[sample_id]})")
            )
        elif sample_id not in known:
            problems.append(Problem(number, f"sample_id {sample_id!r} is not in the dataset"))
        if use is None:
            problems.append(Problem(number, f"use_for_training {value!r} is not true or false"))
        if sample_id and sample_id not in first_seen:
            first_seen[sample_id] = number
            if use is not None:
                decisions[sample_id] = use
    if problems:
        raise ReviewError(name, problems)
    return decisions


def render_review_csv(decisions: Mapping[str, bool]) -> bytes:
    """Canonical review.csv: header, rows sorted by sample_id, lowercase values, LF line ends."""
    rows = [",".join(HEADER)] + [f"{sid},{'true' if use else 'false'}" for sid, use in sorted(decisions.items())]
    return ("\n".join(rows) + "\n").encode()


def parse_review_meta(data: bytes, *, name: str = "review.json") -> ReviewMeta:
    """Parse review.json; problems name the JSON line where the parser could place them."""
    _utf8_text(data, name)
    try:
        return ReviewMeta.model_validate_json(data)
    except ValidationError as error:
        problems = [
            Problem(
                _line_of(data, str(e["loc"][0])) if e["loc"] else _json_error_line(e["msg"]),
                f"{_field(e['loc'])}: {e['msg']}",
            )
            for e in error.errors()
        ]
        raise ReviewError(name, problems) from error


def validate_review_csv(csv_data: bytes, *, sample_ids: Collection[str], name: str = "review.csv") -> ReviewDecisions:
    """Validate a bare review.csv (a local file before it is submitted) against the dataset's sample ids."""
    decisions = parse_review_csv(csv_data, sample_ids=sample_ids, name=name)
    ids = sample_ids if isinstance(sample_ids, (set, frozenset)) else set(sample_ids)
    return ReviewDecisions(decisions=decisions, unmentioned=len(ids) - len(decisions))


def validate_review(
    csv_data: bytes,
    meta_data: bytes,
    *,
    revision: int,
    month: str,
    dataset_hash: str,
    sample_ids: Collection[str],
    csv_name: str = "review.csv",
    meta_name: str = "review.json",
) -> Review:
    """Validate a published review revision (review.csv and its review.json) against its dataset."""
    meta = parse_review_meta(meta_data, name=meta_name)
    problems = []
    if meta.dataset_hash != dataset_hash:
        problems.append(
            Problem(
                _line_of(meta_data, "dataset_hash"),
                f"written for dataset hash {meta.dataset_hash}, but the dataset of {month} has {dataset_hash}",
            )
        )
    if meta.month != month:
        problems.append(Problem(_line_of(meta_data, "month"), f"month is {meta.month}, expected {month}"))
    actual = sha256_bytes(csv_data)
    if meta.review_csv_sha256 != actual:
        problems.append(
            Problem(
                _line_of(meta_data, "review_csv_sha256"),
                f"names review.csv sha256 {meta.review_csv_sha256}, but {csv_name} has {actual} "
                "(review.csv changed after it was saved, or the save did not finish)",
            )
        )
    if problems:
        raise ReviewError(meta_name, problems)
    decisions = validate_review_csv(csv_data, sample_ids=sample_ids, name=csv_name)
    return Review(meta=meta, decisions=decisions, revision=revision)


def build_meta(
    *, month: str, reviewer: str, reviewed_at: datetime, dataset_hash: str, csv_data: bytes, review: ReviewDecisions
) -> ReviewMeta:
    """Build the review.json that vouches for ``csv_data``."""
    return ReviewMeta(
        month=month,
        reviewer=reviewer.strip(),
        reviewed_at=reviewed_at,
        dataset_hash=dataset_hash,
        review_csv_sha256=sha256_bytes(csv_data),
        approved=len(review.approved),
        rejected=len(review.rejected),
    )


def _utf8_text(data: bytes, name: str, *, encoding: str = "utf-8") -> str:
    """The file as text; bytes that are not UTF-8 are a ReviewError naming their line and column."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[line_start : error.start].decode(encoding, errors="replace")) + 1
        problem = Problem(
            line,
            f"column {column}: byte 0x{data[error.start]:02x} is not UTF-8 text "
            "(the file was saved in another encoding, e.g. Latin-1; save it as UTF-8)",
        )
        raise ReviewError(name, [problem]) from error


_JSON_LINE = re.compile(r"at line (\d+)")


def _json_error_line(message: str) -> int | None:
    """The line a JSON syntax error names in its message (pydantic says "... at line N column M")."""
    found = _JSON_LINE.search(message)
    return int(found.group(1)) if found else None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "document"


def _line_of(data: bytes, key: str) -> int | None:
    """1-based line of ``"key":`` in a JSON document, so a message can point at it."""
    needle = f'"{key}"'
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if needle in line:
            return number
    return None
