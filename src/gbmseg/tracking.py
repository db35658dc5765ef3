"""Everything MLflow: the only module in gbmseg that imports mlflow.

Runs: every stage logs into a nested run under one parent run per pipeline run
(grouped by the ``group`` key the caller passes).  Models: logged as models-from-code
(``gbmseg/serving.py``) with the state_dict as an artifact, never a pickled network.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# gbmseg models are models-from-code + a state_dict: nothing of ours needs MLflow to
# unpickle, so a pickled model handed to us is refused (set before mlflow reads it)
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import (
    ModelSignature,
    set_model,  # noqa: F401  (re-exported for serving.py)
)
from mlflow.pyfunc import PythonModel  # noqa: F401  (re-exported for serving.py)
from mlflow.types import Schema, TensorSpec

from gbmseg.config import TrackingParams
from gbmseg.errors import TrackingError
from gbmseg.runlog import numbers

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
GROUP_TAG = "gbmseg.pipeline_run"


def _user_uri(tracking_p: TrackingParams) -> str:
    """The store the user named (MLFLOW_TRACKING_URI, else params tracking.uri); "" = none."""
    return os.environ.get("MLFLOW_TRACKING_URI") or tracking_p.uri


def resolve_uri(tracking_p: TrackingParams, root: str | Path = ".") -> str:
    """MLFLOW_TRACKING_URI, else params tracking.uri, else a sqlite file in the project."""
    return _user_uri(tracking_p) or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def _point_mlflow_at(uri: str) -> None:
    """``mlflow.set_tracking_uri`` / ``set_registry_uri`` also export the URI into
    ``os.environ``; that is undone, so the environment keeps only what the user set (a later
    stage in this process with other params must not inherit this one's store)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def setup(tracking_p: TrackingParams, root: str | Path = ".") -> str:
    """Point MLflow at the store and make sure the experiment exists; return its id."""
    embedded = not _user_uri(tracking_p)  # the project's own store keeps its artifacts beside it
    _point_mlflow_at(resolve_uri(tracking_p, root))
    exp = mlflow.get_experiment_by_name(tracking_p.experiment)
    if exp is not None:
        return exp.experiment_id
    location = (Path(root).resolve() / "mlartifacts").as_uri() if embedded else None
    try:
        return mlflow.create_experiment(tracking_p.experiment, artifact_location=location)
    except MlflowException:  # created concurrently by another stage
        return mlflow.get_experiment_by_name(tracking_p.experiment).experiment_id


class RunLogger:
    """What a step may log; a thin, typed face over the active MLflow run.

    Parameters, metrics, tags and files are sent in order; while the server is away they
    are kept and sent at the next call (everything is in the step's files on disk too), so a
    server that drops during a step costs a warning, never the step's work.
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.pending: list[tuple[str, Any, Any]] = []

    def _send(self, kind: str, a: Any, b: Any = None) -> None:
        self.pending.append((kind, a, b))
        self.flush()

    def flush(self) -> bool:
        """Send what is pending; False (and a warning) while MLflow is unreachable."""
        try:
            while self.pending:
                kind, a, b = self.pending[0]
                SEND[kind](a, b)
                self.pending.pop(0)
        except (MlflowException, OSError) as exc:
            log.warning(
                "MLflow unreachable (%s); %d item(s) kept for the next try",
                str(exc).splitlines()[0][:120],
                len(self.pending),
            )
            return False
        return True

    def params(self, values: dict[str, Any]) -> None:
        flat = list(_flatten(values).items())
        for i in range(0, len(flat), 100):
            self._send("params", dict(flat[i : i + 100]))

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """The numbers among ``values`` (a figure that could not be computed is None)."""
        self._send("metrics", numbers(values), step)

    def tags(self, values: dict[str, Any]) -> None:
        self._send("tags", {k: str(v) for k, v in values.items()})

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        if Path(path).exists():
            self._send("artifact", str(path), folder)

    def log_model(self, model_dir: str | Path, input_example: np.ndarray) -> str:
        return log_model(model_dir, input_example)


def _artifact(path: str, folder: str | None) -> None:
    if Path(path).is_dir():
        mlflow.log_artifacts(path, folder)
    else:
        mlflow.log_artifact(path, folder)


SEND = {
    "params": lambda a, _: mlflow.log_params(a),
    "metrics": lambda a, step: mlflow.log_metrics(a, step=step),
    "tags": lambda a, _: mlflow.set_tags(a),
    "artifact": _artifact,
}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _parent_run(experiment_id: str, group: str) -> str:
    client = MlflowClient()
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{GROUP_TAG}` = '{group}' and tags.`gbmseg.role` = 'pipeline'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"pipeline-{group[:12]}",
        tags={GROUP_TAG: group, "gbmseg.role": "pipeline"},
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@contextlib.contextmanager
def stage_run(
    tracking_p: TrackingParams, step: str, group: str, root: str | Path = "."
) -> Iterator[RunLogger]:
    """A nested run for one stage under the pipeline's parent run.  An unreachable store
    fails here, before the step runs: nothing is computed, nothing is lost."""
    try:
        exp_id = setup(tracking_p, root)
        parent = _parent_run(exp_id, group)
    except (MlflowException, OSError) as exc:
        raise _unreachable(tracking_p, root, exc) from exc
    tags = {GROUP_TAG: group, "gbmseg.step": step, "mlflow.parentRunId": parent}
    try:
        run = mlflow.start_run(experiment_id=exp_id, run_name=step, tags=tags)
    except (MlflowException, OSError) as exc:
        raise _unreachable(tracking_p, root, exc) from exc
    run_log = RunLogger(run.info.run_id)
    status = "FAILED"
    try:
        yield run_log
        status = "FINISHED"
    finally:
        sent = run_log.flush()
        try:
            mlflow.end_run(status)
        except (MlflowException, OSError) as exc:
            log.warning("MLflow unreachable at the end of %s (%s)", step, str(exc)[:120])
        if not sent:
            log.warning(
                "%s: %d item(s) never reached MLflow run %s; the step's outputs on disk hold "
                "them all",
                step,
                len(run_log.pending),
                run_log.run_id,
            )


def _unreachable(tracking_p: TrackingParams, root: str | Path, exc: Exception) -> TrackingError:
    text = str(exc).splitlines()[0][:200]
    if any(code in text for code in ("401", "403", "Unauthorized", "credentials")):
        hint = (
            "the server refused the credentials: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (the Secret gbmseg-mlflow-client on a cluster)"
        )
    else:
        hint = (
            "start the server (or unset MLFLOW_TRACKING_URI for the local store), or pass "
            "--no-track"
        )
    return TrackingError(
        f"MLflow at {resolve_uri(tracking_p, root)} is unreachable or refused the request "
        f"({text}); nothing was run. {hint}, and run again"
    )


SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, -1, -1))]),
    outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, -1, -1))]),
)


def log_model(model_dir: str | Path, input_example: np.ndarray) -> str:
    """Log the U-Net folder (weights + the images it saw) as a models-from-code pyfunc in the
    active run; return its URI."""
    model_dir = Path(model_dir)
    artifacts = {"weights": str(model_dir / "model.pt")}
    if (model_dir / "trained_on.json").is_file():
        artifacts["trained_on"] = str(model_dir / "trained_on.json")
    try:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PACKAGE_DIR / "serving.py"),
            artifacts=artifacts,
            code_paths=[str(PACKAGE_DIR)],
            signature=SIGNATURE,
            input_example=input_example.astype(np.float32),
            pip_requirements=["torch==2.13.0", "numpy", "scipy", "pyyaml", "pydantic>=2", "tqdm"],
        )
    except Exception as exc:  # the artifact store (S3, disk) or the server: any failure
        raise TrackingError(
            f"logging the model to MLflow failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); nothing was registered "
            "and no alias moved. Check the artifact store and the server, then run "
            "`gbmseg register` again"
        ) from exc
    return info.model_uri


def register_version(tracking_p: TrackingParams, model_uri: str, tags: dict[str, Any]) -> str:
    """Register a new version of ``tracking_p.model_name``; return its number."""
    mv = mlflow.register_model(
        model_uri, tracking_p.model_name, tags={k: str(v) for k, v in tags.items()}
    )
    log.info("registered %s version %s", tracking_p.model_name, mv.version)
    return str(mv.version)


def find_version(name: str, sha256: str) -> str | None:
    """The registered, unrefused version of ``name`` holding weights ``sha256``, if any."""
    query = f"name = '{name}' and tags.model_sha256 = '{sha256}'"
    try:
        found = MlflowClient().search_model_versions(query)
    except MlflowException:
        return None
    good = [int(v.version) for v in found if "gbmseg.refused" not in (v.tags or {})]
    return str(min(good)) if good else None


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to (read fresh from the registry), or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: dict[str, Any]) -> None:
    client = MlflowClient()
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, str(v))


def verify_version(name: str, version: str, sha256: str) -> None:
    """Refuse a registered version whose stored weights are missing or differ from the
    file that was logged: tag it ``gbmseg.refused`` and raise before any alias moves."""
    import hashlib

    try:
        with downloaded(f"models:/{name}/{version}") as folder:
            got = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
        problem = None if got == sha256 else "weights differ from the logged file"
    except (MlflowException, OSError) as exc:
        problem = f"source artifact missing ({str(exc).splitlines()[0][:160]})"
    if problem:
        MlflowClient().set_model_version_tag(name, version, "gbmseg.refused", problem)
        raise TrackingError(
            f"{name} v{version} refused: {problem}; no alias was moved. Check the artifact "
            "store, then run `gbmseg register` again"
        )


def tracking_uri() -> str:
    return mlflow.get_tracking_uri()


def version_of(uri: str) -> tuple[str, str] | None:
    """(name, version) a models:/NAME@ALIAS or models:/NAME/VERSION URI points to now."""
    if not uri.startswith("models:/"):
        return None
    ref = uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        found = alias_version(name, alias)
        return None if found is None else (name, found)
    name, _, version = ref.partition("/")
    return (name, version) if version else None


def version_record(uri: str) -> dict:
    """The registered version ``uri`` (models:/NAME@ALIAS or models:/NAME/N) points to now:
    name, version, its source run and tags; TrackingError where there is none."""
    found = version_of(uri)
    if found is None:
        raise TrackingError(f"{uri}: not a registered version (models:/NAME@ALIAS or /N)")
    mv = MlflowClient().get_model_version(*found)
    return {"name": mv.name, "version": str(mv.version), "run_id": mv.run_id,
            "tags": dict(mv.tags or {})}  # fmt: skip


def log_package(record: dict, files: list[Path], folder: str = "bioimageio") -> dict:
    """Log exported files to the version's source run (under ``folder``) and tag the version
    ``export.<suffix>`` with where each went."""
    client = MlflowClient()
    where = {}
    for f in files:
        client.log_artifact(record["run_id"], str(f), artifact_path=folder)
        where[f"export.{f.suffix.lstrip('.')}"] = f"runs:/{record['run_id']}/{folder}/{f.name}"
    tag_version(record["name"], record["version"], where)
    log.info("export: logged to run %s, tagged %s v%s", record["run_id"], record["name"],
             record["version"])  # fmt: skip
    return where


@contextlib.contextmanager
def downloaded(uri: str) -> Iterator[Path]:
    """A logged gbmseg model (models:/NAME@ALIAS, models:/NAME/N, runs:/..., m-...) in a
    temporary folder as ``model.pt`` (+ ``trained_on.json`` when logged), removed afterwards.
    No pickled object is loaded.  Reads the store MLflow is pointed at, never re-pointing it."""
    import tempfile

    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="gbmseg-model-") as tmp:
        # only the logged files (artifacts/), not the code snapshot beside them
        local = Path(download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts", dst_path=tmp))
        if not (local / "model.pt").is_file():
            raise MlflowException(f"{uri}: no artifacts/model.pt; was it logged by gbmseg?")
        yield local


def load_model_ref(ref: str | Path):
    """A U-Net from a path (folder or model.pt) or an MLflow URI (models:/NAME@ALIAS, runs:/)."""
    from gbmseg.engine import checkpoint

    text = str(ref)
    if not text.startswith(("models:/", "runs:/")) and "://" not in text:
        return checkpoint.load_model(text)
    with downloaded(text) as folder:
        return checkpoint.load_model(folder)
