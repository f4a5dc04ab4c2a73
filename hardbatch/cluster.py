"""The Ray engine of `hardbatch sweep --engine ray`: one Ray task per run, on one machine or a cluster.

Why: the paper's grid is hundreds of GPU runs. A Ray task asks for the resources of one run (GPUs, CPUs),
and Ray runs as many at once as the machines have. Each task calls `runner.run_one`, the very function the
local engine calls (claim -> train with checkpoint/resume -> atomic record -> release), so the guarantees
are the same: one record per run, never trained twice. A worker killed mid-run: Ray retries its task
(MAX_RETRIES); the retry finds the dead worker's claim (its process is gone, or its heartbeat stale) and
takes it over, and resumes the run from its checkpoint.

OUT must be one folder that every worker sees at the same path (a shared filesystem: NFS, a cluster
file system). The driver leaves a marker file there; a task on a node that does not see it, or cannot
write there, fails with a message naming the path and the node. Every node also needs hardbatch (same
version) and the data sets ($HARDBATCH_DATA or --data-root). Ray is imported here only, and only for
engine="ray": `pip install hardbatch[cluster]`.
"""
import os
import socket
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from . import arms
from .claims import CLAIM_STALE_S
from .config import available_cpus, default_threads, resolve_device
from .data import load_dataset
from .runner import run_one, warm_up

MAX_RETRIES = 3  # a task whose worker died (killed, out of memory, node lost) runs again, from its checkpoint
CONNECT_TIMEOUT_S = 10.0  # --address: how long to try to reach the cluster's head before giving up

_DATA = {}  # per worker process: data sets already loaded, by (name, device)
_WARMED = set()  # per worker process: blocks already warmed up (runner.warm_up)


class OutNotShared(ValueError):
    """A worker cannot see or write the sweep's folder: OUT is not on a filesystem every node shares."""


def _check_out(out, marker, node):
    """Fail with the path and the node when this worker does not see the driver's OUT or cannot write it."""
    hint = "--out must be a folder every worker sees at the same path (a shared filesystem)"
    if not (out / marker).exists():
        raise OutNotShared(f"node {node} does not see the sweep folder {str(out)!r} (the driver's marker "
                           f"{marker} is not there): {hint}")
    try:
        for sub in ("records", "checkpoints", "claims"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out / "claims", prefix=".probe", suffix=".tmp"):
            pass
    except OSError as e:
        raise OutNotShared(f"node {node} cannot write the sweep folder {str(out)!r} ({e.strerror or e}): "
                           f"{hint}") from None


def check_reachable(address, timeout=CONNECT_TIMEOUT_S):
    """Fail in `timeout` seconds, naming `address`, when nothing answers there: ray.init would wait for ever.
    "HOST:PORT" and "ray://HOST:PORT" are probed with one TCP connection; "auto" and others are left to Ray."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ValueError(f"cannot reach a Ray cluster at --address {address} ({why}, waited up to {timeout:g} s); "
                         f"start one there with `ray start --head`, or leave out --address for a local one") from None


def check_resources(nodes, cpus_per_run, gpus_per_run):
    """Fail now, not by waiting for ever, when no node of the cluster has a run's CPUs and GPUs.
    nodes: ray.nodes() (each alive one with its "Resources")."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    most_cpus = max((r.get("CPU", 0) for r in alive), default=0)
    most_gpus = max((r.get("GPU", 0) for r in alive), default=0)
    if not any(r.get("CPU", 0) >= cpus_per_run and r.get("GPU", 0) >= gpus_per_run for r in alive):
        need = f"{cpus_per_run:g} CPU(s) and {gpus_per_run:g} GPU(s)"
        have = f"the largest node has {most_cpus:g} CPU(s) and {most_gpus:g} GPU(s)"
        hint = "--gpus-per-run 0 (no node has a GPU)" if gpus_per_run > most_gpus else \
            f"--cpus-per-run at most {most_cpus:g}"
        raise ValueError(f"no node of the Ray cluster can run a task of {need} ({have}), so it would wait for "
                         f"ever: use {hint}")


def _task(out_dir, marker, name, cfg, data_root, checkpoints, stale_s):
    """One run, inside a Ray worker: the local engine's run_one, with data and warm-up cached per process."""
    node = socket.gethostname()
    out = Path(out_dir)
    try:
        _check_out(out, marker, node)
    except OutNotShared as e:
        return {"error": str(e)}  # returned, not raised: the driver shows this line, not a remote traceback
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    key = (cfg.dataset, device)
    if key not in _DATA:
        _DATA[key] = load_dataset(cfg.dataset, data_root).to(device)

    def warm():
        if arms.block(cfg) not in _WARMED:
            warm_up(cfg, _DATA[key])
            _WARMED.add(arms.block(cfg))

    logs = []
    result = run_one(out, name, cfg, _DATA[key], checkpoints=checkpoints, log=logs.append, warm=warm,
                     stale_s=stale_s)
    return {**result, "logs": logs, "node": node, "seconds": time.perf_counter() - t0}


def run_on_ray(out_dir, pending, *, address=None, gpus_per_run=None, cpus_per_run=1, data_root=None,
               checkpoints=True, stale_s=None, log=print):
    """Run `pending` [(name, RunConfig)] as Ray tasks; yield (name, run_one's result, seconds) as each ends.

    address: join that cluster ("HOST:6379"); None: use Ray if this process already started it, else
    start a local one with this machine's CPUs. gpus_per_run: default 1 if the cluster has a GPU, else 0.
    A run on the CPU gets config.default_threads within its cpus_per_run (unless its config names its threads):
    1 for our small nets, as the local engine gives them, so both engines give the same numbers."""
    import ray

    if cpus_per_run <= 0:
        raise ValueError(f"cpus_per_run must be above 0, got {cpus_per_run}")
    out = Path(out_dir).resolve()  # workers do not share the driver's working directory
    data_root = str(Path(data_root).expanduser().resolve()) if data_root else None
    started = not ray.is_initialized()
    if started:
        if address:
            check_reachable(address)
            ray.init(address=address)
        else:
            ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False)
    marker = f".sweep-{uuid.uuid4().hex[:8]}"
    refs = {}
    try:
        if gpus_per_run is None:
            gpus_per_run = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        check_resources(ray.nodes(), cpus_per_run, gpus_per_run)
        out.mkdir(parents=True, exist_ok=True)
        (out / marker).write_text(f"{socket.gethostname()}:{os.getpid()}\n")
        task = ray.remote(_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RETRIES,
                                         retry_exceptions=False)
        cpus = max(1, int(cpus_per_run))
        log(f"sweep: {len(pending)} Ray tasks of {cpus_per_run:g} CPU and {gpus_per_run:g} GPU each on "
            f"{ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} GPUs")
        for name, cfg in pending:
            cfg = cfg if cfg.threads else replace(cfg, threads=default_threads(cfg.model, cpus))
            refs[task.remote(str(out), marker, name, cfg, data_root, checkpoints,
                             CLAIM_STALE_S if stale_s is None else stale_s)] = name
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            name = refs.pop(done[0])
            result = ray.get(done[0])
            if "error" in result:
                raise OutNotShared(result["error"])
            for line in result["logs"]:
                log(f"{name} (on {result['node']}): {line}")
            yield name, result, result["seconds"]
    finally:
        for ref in refs:  # stopped early (an error, Ctrl-C): a cancelled task releases its claim
            ray.cancel(ref)
        (out / marker).unlink(missing_ok=True)
        if started:
            ray.shutdown()
