"""Errors that the CLI turns into one clear line and an exit code (no mlflow import here)."""


class TrackingError(RuntimeError):
    """MLflow is unreachable, refused a request, or holds a version that cannot be trusted."""


class StorageError(RuntimeError):
    """S3 unreachable, refused the request, or holds an incomplete upload."""
