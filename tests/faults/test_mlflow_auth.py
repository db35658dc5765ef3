"""MLflow behind `--app-name basic-auth` (a real server on loopback): missing or wrong
credentials give one clear error before the step runs (nothing written); the right ones work."""

import os
import subprocess
import sys

import pytest

from tests.conftest import TINY
from tests.servers import mlflow_server

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\nadmin_password = gbmseg-test-admin-7x\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"}
    with mlflow_server(
        f"sqlite:///{root / 'mlflow.db'}",
        root / "art",
        env,
        root,
        extra=("--app-name", "basic-auth"),
    ) as url:
        yield url


def _synth_and_validate(tmp_path, url, user=None, password=None):
    sets = [*TINY, f"sets.target.raw={tmp_path}/raw/target", f"sets.source.raw={tmp_path}/raw/s"]
    sets += [f"validate.out={tmp_path}/validated"]
    args = [a for s in sets for a in ("-S", s)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env |= {"MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    if user is not None:
        env |= {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    gbmseg = [sys.executable, "-m", "gbmseg"]
    subprocess.run([*gbmseg, "synth", *args], env=env, check=True, capture_output=True)
    return subprocess.run(
        [*gbmseg, "validate", "target", *args], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("user", "password"), [(None, None), ("admin", "wrong")], ids=["missing", "wrong"]
)
def test_bad_credentials_fail_clearly_before_the_step(server, tmp_path, user, password):
    res = _synth_and_validate(tmp_path, server, user, password)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "refused the credentials" in res.stderr and "MLFLOW_TRACKING_USERNAME" in res.stderr
    assert "nothing was run" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "validated").exists()


def test_the_right_credentials_work(server, tmp_path):
    res = _synth_and_validate(tmp_path, server, "admin", "gbmseg-test-admin-7x")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "validated" / "target" / "manifest.json").is_file()
