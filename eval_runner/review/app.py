"""The review UI (Streamlit): domain experts approve or reject each sample of a monthly dataset.

Started by ``eval-runner review serve``. The store comes from the FLEET_EVAL_S3_* settings, or from
``st.session_state["store"]`` when a test injects one. Decisions live in the session until the
reviewer saves; saving validates the whole review and publishes it as the month's next revision
(review.csv then review.json); earlier revisions stay as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import streamlit as st

from eval_runner.dataset.reader import LoadedDataset, load_dataset
from eval_runner.errors import FleetEvalError
from eval_runner.keys import DATASETS_PREFIX, Month, month_of_manifest_key
from eval_runner.review.manifest import Review
from eval_runner.review.plots import sample_figure
from eval_runner.review.reader import load_review, save_review
from eval_runner.review.session import (
    DECISION_FILTERS,
    SUGGESTION_FILTERS,
    Filters,
    apply_filters,
    decisions_from_suggestions,
    progress,
    reviewer_from_headers,
)
from eval_runner.storage import ObjectStore

TABLE_COLUMNS = [
    "sample_id", "decision", "suggest_use", "missing_capacity_test", "days_offline", "longest_gap_hours",
    "firmware_changed_mid_month", "voltage_anomalies", "hardware_revision", "firmware_version",
    "battery_chemistry", "true_capacity_mah", "true_runtime_days",
]  # fmt: skip


def _store() -> ObjectStore:
    injected = st.session_state.get("store")
    if injected is not None:
        return injected  # type: ignore[no-any-return]  # a test put an ObjectStore there
    return _store_from_settings()


@st.cache_resource
def _store_from_settings() -> ObjectStore:
    from eval_runner.cli import load_settings  # the CLI owns reading the environment
    from eval_runner.settings import S3Settings
    from eval_runner.storage import S3ObjectStore

    return S3ObjectStore.from_settings(load_settings(S3Settings, "S3"))


def published_months(store: ObjectStore) -> list[str]:
    """Months with a published dataset, newest first."""
    found = (month_of_manifest_key(key) for key in store.list(DATASETS_PREFIX))
    return [str(month) for month in sorted((m for m in found if m is not None), reverse=True)]


def _dataset(store: ObjectStore, month: str) -> LoadedDataset:
    cache: dict[str, LoadedDataset] = st.session_state.setdefault("datasets", {})
    if month not in cache:
        cache[month] = load_dataset(store, Month.parse(month))
    return cache[month]


def _decisions(store: ObjectStore, loaded: LoadedDataset) -> dict[str, bool]:
    """The session's decisions for this dataset, starting from its saved review when there is one."""
    key = f"decisions:{loaded.manifest.month}:{loaded.content_hash}"
    if key not in st.session_state:
        decisions: dict[str, bool] = {}
        try:
            saved = load_review(
                store,
                Month.parse(loaded.manifest.month),
                loaded.content_hash,
                sample_ids=loaded.dataset["sample_id"].to_list(),
            )
        except FleetEvalError as error:
            if "has not been reviewed" not in str(error):
                st.warning(f"The saved review cannot be used and is ignored: {error}")
        else:
            decisions = {s: True for s in saved.approved} | {s: False for s in saved.rejected}
            st.session_state["last_saved"] = saved
        st.session_state[key] = decisions
    result: dict[str, bool] = st.session_state[key]
    return result


def _reviewer() -> str:
    asserted = reviewer_from_headers(dict(st.context.headers or {}))
    if asserted:
        st.sidebar.markdown(f"Reviewer: **{asserted}** (from the login proxy)")
        return asserted
    name: str = st.sidebar.text_input("Your name (recorded in review.json)", key="reviewer")
    return name.strip()


def _filters() -> Filters:
    sidebar = st.sidebar
    sidebar.header("Filters")
    tri = {"any": None, "yes": True, "no": False}
    return Filters(
        suggestion=sidebar.selectbox("Suggestion", SUGGESTION_FILTERS, key="f_suggestion"),
        decision=sidebar.selectbox("Decision", DECISION_FILTERS, key="f_decision"),
        missing_capacity_test=tri[sidebar.selectbox("Missing capacity test", list(tri), key="f_missing")],
        firmware_changed=tri[sidebar.selectbox("Firmware changed mid-month", list(tri), key="f_firmware")],
        min_days_offline=float(sidebar.number_input("Min. days offline", 0.0, 31.0, 0.0, 0.5, key="f_offline")),
        search=sidebar.text_input("Sample id contains", key="f_search"),
    )


def _set(decisions: dict[str, bool], updates: dict[str, bool]) -> None:
    decisions.update(updates)


def _bulk(decisions: dict[str, bool], shown: pl.DataFrame) -> None:
    st.subheader("Bulk decisions for the filtered samples")
    ids = shown["sample_id"].to_list()
    left, middle, right = st.columns(3)
    left.button(
        f"Accept suggestions ({len(ids)})",
        key="bulk_suggest",
        on_click=_set,
        args=(decisions, decisions_from_suggestions(shown)),
        help="Approve the suggested samples and reject the others, among those filtered.",
    )
    middle.button(
        f"Approve all ({len(ids)})", key="bulk_approve", on_click=_set, args=(decisions, dict.fromkeys(ids, True))
    )
    right.button(
        f"Reject all ({len(ids)})", key="bulk_reject", on_click=_set, args=(decisions, dict.fromkeys(ids, False))
    )


def _sample(loaded: LoadedDataset, decisions: dict[str, bool], shown: pl.DataFrame) -> None:
    ids = shown["sample_id"].to_list()
    if not ids:
        st.info("No sample matches the filters.")
        return
    sample_id: str = st.selectbox("Sample", ids, key="sample")
    row: dict[str, Any] = loaded.dataset.filter(pl.col("sample_id") == sample_id).row(0, named=True)
    current = decisions.get(sample_id)
    label = {True: "approved", False: "rejected", None: "undecided"}[current]
    st.markdown(f"**{sample_id}** is *{label}*; extractor suggests **{'use' if row['suggest_use'] else 'do not use'}**")
    approve, reject = st.columns(2)
    approve.button("Approve", key="approve_one", on_click=_set, args=(decisions, {sample_id: True}), type="primary")
    reject.button("Reject", key="reject_one", on_click=_set, args=(decisions, {sample_id: False}))
    signals = st.columns(5)
    signals[0].metric("days offline", f"{row['days_offline']:.1f}")
    signals[1].metric("longest gap (h)", row["longest_gap_hours"])
    signals[2].metric("voltage anomalies", row["voltage_anomalies"])
    changed = row["firmware_version"] != row["firmware_version_at_as_of"]
    signals[3].metric(
        "firmware at as_of",
        row["firmware_version_at_as_of"] or "unknown",
        delta=f"from {row['firmware_version']}" if changed else None,
        delta_color="off",
    )
    truth = row["true_capacity_mah"]
    signals[4].metric("true capacity (mAh)", "missing" if truth is None else f"{truth:.0f}")
    series = loaded.series.filter(pl.col("sample_id") == sample_id)
    events = loaded.events.filter(pl.col("sample_id") == sample_id)
    st.pyplot(sample_figure(row, series, events), clear_figure=False)


def _save(store: ObjectStore, loaded: LoadedDataset, decisions: dict[str, bool], reviewer: str) -> None:
    st.divider()
    disabled = not reviewer or not decisions
    if st.button("Save review to S3", key="save", type="primary", disabled=disabled):
        try:
            saved = save_review(
                store,
                Month.parse(loaded.manifest.month),
                decisions,
                reviewer=reviewer,
                reviewed_at=datetime.now(UTC),
                dataset_hash=loaded.content_hash,
                sample_ids=loaded.dataset["sample_id"].to_list(),
            )
        except FleetEvalError as error:
            st.error(f"Not saved: {error}")
            return
        st.session_state["last_saved"] = saved
    saved_review: Review | None = st.session_state.get("last_saved")
    if saved_review is not None and saved_review.dataset_hash == loaded.content_hash:
        st.success(
            f"Revision {saved_review.revision} (review hash {saved_review.review_hash[:12]}) saved by "
            f"{saved_review.reviewer} at {saved_review.reviewed_at:%Y-%m-%d %H:%M} UTC: "
            f"{len(saved_review.approved)} approved, {len(saved_review.rejected)} rejected, "
            f"{saved_review.unmentioned} not reviewed (not approved)."
        )
    if not reviewer:
        st.caption("Enter your name in the sidebar to save.")


def main() -> None:
    """Render the review page."""
    st.set_page_config(page_title="fleet-eval review", layout="wide")
    st.title("Monthly dataset review")
    store = _store()
    months = published_months(store)
    if not months:
        st.info("No dataset has been published yet; run `eval-runner dataset build --month YYYY-MM`.")
        return
    month = st.sidebar.selectbox("Month", months, key="month")
    reviewer = _reviewer()
    try:
        loaded = _dataset(store, month)
    except FleetEvalError as error:
        st.error(f"The dataset of {month} cannot be reviewed: {error}")
        return
    decisions = _decisions(store, loaded)
    filters = _filters()
    shown = apply_filters(loaded.dataset, decisions, filters)
    reviewed, total = progress(decisions, loaded.dataset["sample_id"])
    st.progress(reviewed / total if total else 1.0, text=f"Reviewed {reviewed} / {total}")
    st.caption(f"dataset content hash {loaded.content_hash[:16]}..., schema v{loaded.manifest.schema_version}")
    st.dataframe(shown.select(TABLE_COLUMNS), hide_index=True, width="stretch")
    _bulk(decisions, shown)
    st.subheader("Sample")
    _sample(loaded, decisions, shown)
    _save(store, loaded, decisions, reviewer)


if __name__ == "__main__":  # streamlit runs this file as __main__; importing it renders nothing
    main()
