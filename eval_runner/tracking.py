"""Experiment tracking: the one place that knows MLflow, behind the Tracker protocol.

The adapter uses ``MlflowClient`` (no global active run), so several runs can be written by one process
and nothing leaks between steps. Artifacts go through the tracking server (``--serve-artifacts``), so
pods need no S3 credentials for MLflow.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.exits import wrap
from eval_runner.retry import retry_transient
from eval_runner.settings import MlflowSettings

T = TypeVar("T")

_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}
_CONFIG_CODES = {"PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE"}


def _map_errors(what: str, call: Callable[[], T]) -> T:
    """Run one MLflow call, mapping its errors to ours in this single place."""
    try:
        return call()
    except RestException as error:
        code = error.error_code
        if code in _TRANSIENT_CODES:
            raise TransientError(f"{what}: MLflow is unavailable ({code})") from error
        if code in _CONFIG_CODES:
            raise ConfigError(f"{what}: MLflow refused the request ({code}: {error.message})") from error
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise DataError(f"{what}: not found in MLflow ({error.message})") from error
        raise DataError(f"{what}: MLflow error {code}: {error.message}") from error
    except MlflowException as error:
        # Bare MlflowExceptions are many things: the network after the client's own retries (75), or a
        # local misuse (70); eval_runner.exits tells them apart.
        raise wrap(what, error) from error
    except OSError as error:
        raise TransientError(f"{what}: MLflow unreachable ({error})") from error


@dataclass(frozen=True)
class RunRecord:
    """A run as read back: what later steps (compare, gate, listings) need."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelVersionRecord:
    """A registered model version: which library version it stands for and which run evaluated it."""

    model: str
    version: str
    library_version: str
    run_id: str | None


LIBRARY_VERSION_TAG = "library_version"


class TrackedRun(Protocol):
    """An open run."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        ...

    def log_batch(
        self, *, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Log parameters (stringified) and metrics (at step 0) in one request."""
        ...

    def log_artifacts(self, files: Mapping[str, bytes]) -> None:
        """Store each ``name: data`` as an artifact (a name may contain a sub-path), in one upload."""
        ...


class Tracker(Protocol):
    """What steps need from experiment tracking."""

    def run(
        self, experiment: str, name: str, *, tags: Mapping[str, str] | None = None
    ) -> AbstractContextManager[TrackedRun]:
        """Open a run in ``experiment``; it ends FINISHED, or FAILED when the block raises."""
        ...

    def find_runs(self, experiment: str, *, tags: Mapping[str, str]) -> list[RunRecord]:
        """Finished runs of ``experiment`` whose tags equal ``tags``, newest first."""
        ...

    def alias_version(self, model: str, alias: str) -> ModelVersionRecord | None:
        """Return the registered model version ``alias`` points at, or None (no model or no alias yet)."""
        ...

    def promote(self, model: str, *, library_version: str, run_id: str, alias: str) -> ModelVersionRecord:
        """Point ``alias`` of ``model`` at the version for ``library_version`` (registered on first use)."""
        ...


# MLflow's log_batch takes at most 1,000 entries per request, of which at most 100 params.
_BATCH_ENTRIES = 1000
_BATCH_PARAMS = 100


class _MlflowRun:
    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self._client = client
        self._run_id = run_id

    @property
    def run_id(self) -> str:
        return self._run_id

    def _call(self, what: str, call: Callable[[], T]) -> T:
        return retry_transient(lambda: _map_errors(what, call), what=what)

    def log_batch(
        self, *, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        from mlflow.entities import Metric, Param

        todo_params = [Param(key, str(value)) for key, value in (params or {}).items()]
        todo_metrics = [Metric(key, float(value), 0, 0) for key, value in (metrics or {}).items()]
        # One request unless MLflow's limits per request say otherwise (many segments, many metrics).
        while todo_params or todo_metrics:
            batch_params, todo_params = todo_params[:_BATCH_PARAMS], todo_params[_BATCH_PARAMS:]
            room = _BATCH_ENTRIES - len(batch_params)
            batch_metrics, todo_metrics = todo_metrics[:room], todo_metrics[room:]
            self._call(
                f"run {self._run_id}: log {len(batch_params)} params and {len(batch_metrics)} metrics",
                functools.partial(self._client.log_batch, self._run_id, metrics=batch_metrics, params=batch_params),
            )

    def log_artifacts(self, files: Mapping[str, bytes]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                relative = Path(name)
                if relative.is_absolute() or ".." in relative.parts:
                    raise ConfigError(f"run {self._run_id}: artifact {name!r} must be a relative path inside the run")
                local = Path(tmp) / relative
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(data)
            self._call(
                f"run {self._run_id}: log artifacts {', '.join(files)}",
                lambda: self._client.log_artifacts(self._run_id, tmp),
            )


class MlflowTracker:
    """Tracker on an MLflow tracking server."""

    def __init__(self, client: MlflowClient, *, experiment_prefix: str = "fleet-eval") -> None:
        self._client = client
        self._prefix = experiment_prefix
        # Experiment ids never change once created; caching saves a round trip per run and per search.
        self._experiment_ids: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: MlflowSettings) -> MlflowTracker:
        """Client for the configured server."""
        return cls(MlflowClient(tracking_uri=settings.tracking_uri), experiment_prefix=settings.experiment_prefix)

    @property
    def client(self) -> MlflowClient:
        """The underlying client, for adapters that need registry calls."""
        return self._client

    def _call(self, what: str, call: Callable[[], T]) -> T:
        return retry_transient(lambda: _map_errors(what, call), what=what)

    def experiment_id(self, experiment: str) -> str:
        """Id of ``<prefix>/<experiment>``, created on first use."""
        full = f"{self._prefix}/{experiment}"
        if full not in self._experiment_ids:
            self._experiment_ids[full] = self._lookup_experiment(full)
        return self._experiment_ids[full]

    def _lookup_experiment(self, full: str) -> str:
        found = self._call(f"experiment {full}", lambda: self._client.get_experiment_by_name(full))
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self._call(f"experiment {full}", lambda: self._client.create_experiment(full)))
        except DataError:
            # Another pod created it between our read and our create.
            again = self._call(f"experiment {full}", lambda: self._client.get_experiment_by_name(full))
            if again is None:
                raise
            return str(again.experiment_id)

    @contextmanager
    def run(self, experiment: str, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[TrackedRun]:
        """Open a run in ``experiment``; it ends FINISHED, or FAILED when the block raises."""
        experiment_id = self.experiment_id(experiment)
        created = self._call(
            f"run {name}",
            lambda: self._client.create_run(experiment_id, run_name=name, tags=dict(tags or {})),
        )
        run_id = str(created.info.run_id)
        status = RunStatus.to_string(RunStatus.FAILED)
        try:
            yield _MlflowRun(self._client, run_id)
            status = RunStatus.to_string(RunStatus.FINISHED)
        finally:
            # MLflow prints "View run ... at: <url>" to stdout here; stdout is the JSON summary Argo reads.
            with contextlib.redirect_stdout(sys.stderr):
                self._call(f"run {name}: end", lambda: self._client.set_terminated(run_id, status=status))

    def find_runs(self, experiment: str, *, tags: Mapping[str, str]) -> list[RunRecord]:
        """Finished runs of ``experiment`` whose tags equal ``tags``, newest first."""
        experiment_id = self.experiment_id(experiment)
        clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
        clauses.append("attributes.status = 'FINISHED'")
        runs = self._call(
            f"search runs in {experiment}",
            lambda: self._client.search_runs(
                [experiment_id], filter_string=" and ".join(clauses), order_by=["attributes.start_time DESC"]
            ),
        )
        return [
            RunRecord(
                run_id=str(run.info.run_id),
                name=str(run.info.run_name),
                params=dict(run.data.params),
                metrics={key: float(value) for key, value in run.data.metrics.items()},
                tags=dict(run.data.tags),
            )
            for run in runs
        ]

    # ---- model registry: the champion is an alias on a registered model ------------------------------
    def _ensure_registered_model(self, model: str) -> None:
        try:
            self._call(f"registered model {model}", lambda: self._client.get_registered_model(model))
        except DataError:
            try:
                self._call(f"registered model {model}", lambda: self._client.create_registered_model(model))
            except DataError:
                # Created by another pod between our read and our create; anything else re-raises here.
                self._call(f"registered model {model}", lambda: self._client.get_registered_model(model))

    def _record(self, model: str, found: object) -> ModelVersionRecord:
        tags = dict(getattr(found, "tags", {}) or {})
        run_id = getattr(found, "run_id", None)
        return ModelVersionRecord(
            model=model,
            version=str(getattr(found, "version", "")),
            library_version=str(tags.get(LIBRARY_VERSION_TAG, "")),
            run_id=str(run_id) if run_id else None,
        )

    def model_versions(self, model: str) -> list[ModelVersionRecord]:
        """Every registered version of ``model`` (empty when the model does not exist)."""
        try:
            found = self._call(f"versions of {model}", lambda: self._client.search_model_versions(f"name = '{model}'"))
        except DataError:
            return []
        return sorted((self._record(model, item) for item in found), key=lambda r: int(r.version))

    def alias_version(self, model: str, alias: str) -> ModelVersionRecord | None:
        """Return the registered model version ``alias`` points at, or None (no model or no alias yet)."""
        try:
            found = self._call(
                f"alias {alias} of {model}", lambda: self._client.get_model_version_by_alias(model, alias)
            )
        except DataError:
            return None
        return self._record(model, found)

    def promote(self, model: str, *, library_version: str, run_id: str, alias: str) -> ModelVersionRecord:
        """Point ``alias`` of ``model`` at the version for ``library_version`` (registered on first use).

        One model version per library version: a retried promotion finds the version it registered
        before instead of registering another, and setting an alias to where it points is a no-op.
        """
        self._ensure_registered_model(model)
        existing = [r for r in self.model_versions(model) if r.library_version == library_version]
        if existing:
            target = existing[0]
        else:
            created = self._call(
                f"register {model} {library_version}",
                lambda: self._client.create_model_version(
                    model,
                    source=f"runs:/{run_id}/evaluation",
                    run_id=run_id,
                    tags={LIBRARY_VERSION_TAG: library_version},
                    description=f"battery-lib {library_version}",
                ),
            )
            target = self._record(model, created)
        self._call(
            f"set alias {alias} of {model}",
            lambda: self._client.set_registered_model_alias(model, alias, target.version),
        )
        return target


_: type[Tracker] = MlflowTracker  # the adapter satisfies the protocol (checked by mypy)


class _MirroredRun:
    """A run that also writes its ``plots/*`` artifacts to a local folder."""

    def __init__(self, run: TrackedRun, folder: Path) -> None:
        self._run = run
        self._folder = folder

    @property
    def run_id(self) -> str:
        return self._run.run_id

    def log_batch(
        self, *, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self._run.log_batch(params=params, metrics=metrics)

    def log_artifacts(self, files: Mapping[str, bytes]) -> None:
        self._run.log_artifacts(files)
        for name, data in files.items():
            if name.startswith(PLOTS_PREFIX):
                target = self._folder / name.removeprefix(PLOTS_PREFIX)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)


PLOTS_PREFIX = "plots/"


class PlotMirroringTracker:
    """A Tracker that copies every ``plots/...`` artifact into a local folder as it is logged.

    Workflow steps pass ``--plots-dir /tmp/outputs/plots`` so Argo uploads the same PNGs uncompressed
    and its UI shows them on the node; MLflow stays the place of record.
    """

    def __init__(self, tracker: Tracker, folder: Path) -> None:
        self._tracker = tracker
        self._folder = folder

    @contextmanager
    def run(self, experiment: str, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[TrackedRun]:
        """Open a run on the wrapped tracker whose plots are mirrored."""
        with self._tracker.run(experiment, name, tags=tags) as run:
            yield _MirroredRun(run, self._folder)

    def find_runs(self, experiment: str, *, tags: Mapping[str, str]) -> list[RunRecord]:
        """Runs of the wrapped tracker."""
        return self._tracker.find_runs(experiment, tags=tags)

    def alias_version(self, model: str, alias: str) -> ModelVersionRecord | None:
        """The wrapped tracker's alias."""
        return self._tracker.alias_version(model, alias)

    def promote(self, model: str, *, library_version: str, run_id: str, alias: str) -> ModelVersionRecord:
        """Promote through the wrapped tracker."""
        return self._tracker.promote(model, library_version=library_version, run_id=run_id, alias=alias)


_mirroring: type[Tracker] = PlotMirroringTracker  # satisfies the protocol (checked by mypy)
