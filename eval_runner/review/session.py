"""Pure logic behind the review UI: who is reviewing, filters, bulk decisions from suggestions, progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

# Headers an authenticating proxy (oauth2-proxy, Pomerium, nginx auth_request) sets; first one wins.
IDENTITY_HEADERS = (
    "X-Forwarded-User",
    "X-Auth-Request-User",
    "X-Forwarded-Preferred-Username",
    "X-Auth-Request-Preferred-Username",
    "X-Forwarded-Email",
    "X-Auth-Request-Email",
    "Remote-User",
)

SUGGESTION_FILTERS = ("all", "suggested", "not suggested")
DECISION_FILTERS = ("all", "undecided", "approved", "rejected")


def reviewer_from_headers(headers: Mapping[str, str]) -> str | None:
    """The reviewer's identity asserted by the auth proxy, or None when no proxy header is present."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in IDENTITY_HEADERS:
        value = lowered.get(name.lower(), "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class Filters:
    """What the reviewer narrowed the sample list to."""

    suggestion: str = "all"
    decision: str = "all"
    missing_capacity_test: bool | None = None
    firmware_changed: bool | None = None
    min_days_offline: float = 0.0
    search: str = ""


def apply_filters(dataset: pl.DataFrame, decisions: Mapping[str, bool], filters: Filters) -> pl.DataFrame:
    """The samples that pass ``filters``, with a ``decision`` column ("approve", "reject" or "")."""
    table = with_decisions(dataset, decisions)
    condition = pl.lit(True)
    if filters.suggestion == "suggested":
        condition &= pl.col("suggest_use")
    elif filters.suggestion == "not suggested":
        condition &= ~pl.col("suggest_use")
    if filters.decision == "undecided":
        condition &= pl.col("decision") == ""
    elif filters.decision == "approved":
        condition &= pl.col("decision") == "approve"
    elif filters.decision == "rejected":
        condition &= pl.col("decision") == "reject"
    if filters.missing_capacity_test is not None:
        condition &= pl.col("missing_capacity_test") == filters.missing_capacity_test
    if filters.firmware_changed is not None:
        condition &= pl.col("firmware_changed_mid_month") == filters.firmware_changed
    if filters.min_days_offline > 0:
        condition &= pl.col("days_offline") >= filters.min_days_offline
    if filters.search.strip():
        condition &= pl.col("sample_id").str.contains(filters.search.strip(), literal=True)
    return table.filter(condition)


def with_decisions(dataset: pl.DataFrame, decisions: Mapping[str, bool]) -> pl.DataFrame:
    """``dataset`` with a ``decision`` column from the reviewer's decisions so far."""
    labels = {sample: ("approve" if use else "reject") for sample, use in decisions.items()}
    return dataset.with_columns(
        pl.col("sample_id").replace_strict(labels, default="", return_dtype=pl.String).alias("decision")
    )


def decisions_from_suggestions(samples: pl.DataFrame) -> dict[str, bool]:
    """Take the extractor's suggestion as the decision for each of ``samples``."""
    return dict(zip(samples["sample_id"].to_list(), samples["suggest_use"].to_list(), strict=True))


def progress(decisions: Mapping[str, bool], sample_ids: pl.Series) -> tuple[int, int]:
    """(reviewed, total): how many of the dataset's samples have a decision."""
    return int(sample_ids.is_in(list(decisions)).sum()), sample_ids.len()
