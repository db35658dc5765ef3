"""Bounded load test of the tracking service: N client processes log metric batches and
register a model version each against a real `mlflow server` backed by PostgreSQL, all on
loopback; it stops by itself after --batches per client.  Reports throughput and errors and
counts what reached the store: zero lost writes is the bar.

    python -m benchmarks.mlflow_load [--clients 8] [--batches 50] [--metrics 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write


def _client(url: str, weights: str, batches: int, n_metrics: int, q) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = url
    from gbmseg import tracking
    from gbmseg.config import TrackingParams

    tp = TrackingParams(uri="", experiment="load", model_name="load-unet")
    errors, t0 = 0, time.perf_counter()
    with tracking.stage_run(tp, "load", f"client-{os.getpid()}") as run:
        for step in range(batches):
            run.metrics({f"m{i}": step + i / 10 for i in range(n_metrics)}, step=step)
            errors += bool(run.pending)
        logging_s = time.perf_counter() - t0
        uri = run.log_model(weights, np.zeros((1, 1, 16, 16), np.float32))
        version = tracking.register_version(tp, uri, {"client": os.getpid()})
    q.put({"run_id": run.run_id, "version": version, "errors": errors, "logging_s": logging_s})


def _collect(q, procs: list, deadline: float) -> list[dict]:
    """Each client's result; a client that died without one is an error at once (its exit
    code said), not a wait until the deadline."""
    import queue

    results: list[dict] = []
    while len(results) < len(procs):
        try:
            results.append(q.get(timeout=2))
            continue
        except queue.Empty:
            pass
        dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise RuntimeError(f"load clients failed (exit codes {dead}) or timed out")
    for p in procs:
        p.join(60)
    return results


def run_load(url: str, clients: int, batches: int, n_metrics: int, work: Path) -> dict:
    import torch

    from gbmseg.engine import checkpoint
    from gbmseg.model.unet import build

    m = build({"depth": 2, "base": 4})
    weights = work / "model"  # a model folder, as the register step logs it
    weights.mkdir(parents=True, exist_ok=True)
    checkpoint.save(weights / "model.pt", checkpoint.model_state(m))
    del torch
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(url, str(weights), batches, n_metrics, q))
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = _collect(q, procs, deadline=time.monotonic() + 600)
    wall = time.perf_counter() - t0
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    stored = sum(
        len(client.get_metric_history(r["run_id"], f"m{i}"))
        for r in results
        for i in range(n_metrics)
    )
    versions = client.search_model_versions("name = 'load-unet'")
    sent = clients * batches * n_metrics
    return {
        "clients": clients,
        "batches_per_client": batches,
        "metrics_per_batch": n_metrics,
        "metric_values_sent": sent,
        "metric_values_stored": stored,
        "lost_writes": sent - stored,
        "client_errors": sum(r["errors"] for r in results),
        "versions_registered": len(versions),
        "distinct_versions": len({r["version"] for r in results}),
        "wall_s": round(wall, 2),
        "metric_batches_per_s": round(clients * batches / max(r["logging_s"] for r in results), 1),
        "exit_codes": [p.exitcode for p in procs],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    from tests.servers import mlflow_server, postgres

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with postgres() as pg, mlflow_server(pg, work / "art", workers=4) as url:
            res = run_load(url, args.clients, args.batches, args.metrics, work)
    rows = [{"measure": k, "value": v} for k, v in res.items() if k != "exit_codes"]
    write(args.out, "mlflow_load", res, table(rows, ["measure", "value"]))


if __name__ == "__main__":
    main()
