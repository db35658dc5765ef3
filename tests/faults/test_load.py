"""Bounded load on the tracking service (loopback, stops by itself): concurrent clients
logging metrics and registering against `mlflow server` + PostgreSQL lose no write."""

import pytest

from benchmarks.mlflow_load import run_load
from tests.servers import mlflow_server, postgres

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def test_concurrent_clients_lose_no_write(tmp_path):
    with postgres() as pg, mlflow_server(pg, tmp_path / "art", workers=4) as url:
        res = run_load(url, clients=4, batches=20, n_metrics=5, work=tmp_path)
    assert res["exit_codes"] == [0] * 4
    assert res["metric_values_sent"] == 4 * 20 * 5
    assert res["lost_writes"] == 0 and res["client_errors"] == 0
    assert res["versions_registered"] == res["distinct_versions"] == 4
