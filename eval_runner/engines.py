"""The data engines a stored record was computed with.

polars computes every frame and pyarrow writes and reads every Parquet file, so a dataset manifest and an
evaluation record name the versions they ran with: two records that disagree can then be told apart from
an engine upgrade. Read from the installed distributions, not from the modules, so nothing is imported.
"""

from __future__ import annotations

from importlib.metadata import version

from eval_runner.stored import RecordPart


class EngineVersions(RecordPart):
    """The installed polars and pyarrow versions (a part of the manifests and records that name them)."""

    polars: str
    pyarrow: str


def installed_engines() -> EngineVersions:
    """The versions installed in this environment."""
    return EngineVersions(polars=version("polars"), pyarrow=version("pyarrow"))
