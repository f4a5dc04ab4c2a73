"""Claims and the Ray engine: a run is trained once, whatever races, on one machine or a Ray cluster.

The Ray tests share one real local Ray cluster (127.0.0.1, 2 CPUs, CPU only: starting one takes
~20 s on a busy 2-core machine), and skip where Ray is not installed (`pip install hardbatch[cluster]`).
All runs are tiny: small_cnn on 256 digits, batches of 64 (N = 4), 2 equivalent epochs. Claims that tell
nothing (a heartbeat in the future or not a number, a link, a pipe, a folder) are taken over or reported as
unusable; Ray resources no node has, and addresses where nothing answers, are refused before any run waits.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

import hardbatch.sweep as sw
from hardbatch import claims, cluster
from hardbatch import RunConfig, load_record
from hardbatch.cli import main
from hardbatch.record import without_timing
from helpers import RUNS, SWEEP, run_main

BASE = RunConfig(model="small_cnn", dataset="digits", epochs=2, batch_size=64, subset=256, lr=0.05, device="cpu",
                 threads=1)
GRID = dict(models=("small_cnn",), datasets=("digits",), deltas=(0.2,), seeds=(0, 1))  # 3 arms × 2 seeds
QUIET = dict(progress=False, log=lambda *_: None)


def names(base=BASE):
    return [name for name, _ in sw.plan(**GRID, base=base)]


def records(out):
    return {p.stem: load_record(p) for p in (out / "records").glob("*.json")}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The 6 runs by the local engine: the reference every engine must match."""
    out = tmp_path_factory.mktemp("local")
    summary = sw.sweep(out, **GRID, base=BASE, **QUIET)
    assert len(summary["ran"]) == 6
    return records(out)


# ---------------------------------------------------------------- claims, without Ray

def test_a_claim_is_exclusive_and_released(tmp_path):
    path = tmp_path / "claims" / "run.claim"
    a, b = claims.Claim(path), claims.Claim(path)
    assert a.acquire()
    assert not b.acquire() and b.holder == a.owner  # a live owner keeps it
    owner, heartbeat = a.read()
    assert owner == a.owner and owner.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert abs(heartbeat - time.time()) < 60
    b.release()  # not b's: stays
    assert path.exists()
    a.release()
    assert not path.exists() and b.acquire()
    b.release()


def test_a_stale_claim_is_taken_over_and_its_owner_stops(tmp_path):
    path = tmp_path / "run.claim"
    old = claims.Claim(path, stale_s=0.4)  # its heartbeat thread beats every 0.1 s...
    assert old.acquire()
    old._stop.set()  # ...until it freezes (a suspended process, a lost node)
    old._thread.join()
    time.sleep(0.6)
    new = claims.Claim(path, stale_s=0.4)
    assert new.acquire() and new.took_over == old.owner and new.read()[0] == new.owner
    old._stop.clear()
    threading.Thread(target=old._beat, daemon=True).start()  # it wakes up: the claim is no longer its own
    time.sleep(0.3)
    with pytest.raises(claims.ClaimLost):
        old.check()
    old.release()  # never removes another's claim
    assert new.read()[0] == new.owner
    new.release()


def test_a_dead_owners_claim_is_taken_over_at_once(tmp_path):
    """A killed process (same host) leaves a claim with a fresh heartbeat: the pid tells it is gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "run.claim"
    path.write_text(json.dumps({"owner": f"{socket.gethostname()}:{dead.pid}:x", "heartbeat": time.time()}))
    claim = claims.Claim(path)  # stale limit 300 s: only the pid can make it free
    assert claim.acquire() and claim.took_over.endswith(":x")
    claim.release()


TWO_SWEEPS = """
import json, sys, time
from pathlib import Path
import hardbatch.runner as runner
import hardbatch.sweep as sw
from hardbatch import claims
from hardbatch import RunConfig
out, me, base, grid = Path(sys.argv[1]), sys.argv[2], RunConfig.from_dict(json.loads(sys.argv[3])), json.loads(sys.argv[4])
real = runner.train
def counting(cfg, **kw):  # every training of a run (warm-ups excluded) appends its name to one file
    if kw.get("checkpoint") is not None or "resume" in kw:
        with open(out / "trainings.txt", "a") as f:
            f.write(sw.arms.record_name(cfg) + "\\n")
    return real(cfg, **kw)
runner.train = counting
(out / f"ready-{me}").touch()
while len(list(out.glob("ready-*"))) < 2:  # start together
    time.sleep(0.01)
s = sw.sweep(out, **grid, base=base, progress=False, log=lambda *_: None)
print(json.dumps({k: s[k] for k in ("ran", "skipped", "claimed")} | {"ray imported": "ray" in sys.modules}))
"""


def test_two_sweeps_at_once_train_each_run_once(tmp_path):
    grid = {k: list(v) for k, v in GRID.items()}
    argv = [json.dumps(BASE.to_dict()), json.dumps(grid)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", TWO_SWEEPS, str(tmp_path), me, *argv], env=env,
                              stdout=subprocess.PIPE, text=True) for me in ("a", "b")]
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    trained = (tmp_path / "trainings.txt").read_text().split()
    assert sorted(trained) == sorted(names())  # every run trained, none twice
    a, b = outs
    assert sorted(a["ran"] + b["ran"]) == sorted(names())
    for s in outs:  # each run was trained by one and, in the other, found done or held
        assert sorted(s["ran"] + s["skipped"] + s["claimed"]) == sorted(names())
    assert {name for name, r in records(tmp_path).items() if r["status"] == "complete"} == set(names())
    assert not list((tmp_path / "claims").glob("*.claim"))  # released once each record was written
    assert not a["ray imported"] and not b["ray imported"]  # the local engine never imports Ray


def test_ray_options_are_refused_with_the_local_engine(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--models", "small_cnn", "--datasets", "digits", "--cpus-per-run", "2", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--cpus-per-run: only with --engine ray" in capsys.readouterr().err


# ------------------------------------------------------------------ claims that tell nothing (issue 18, class 2)

@pytest.mark.parametrize("heartbeat", [time.time() + 10**6, 1e300, "NaN", "Infinity", "-Infinity", "soon"])
def test_a_claim_whose_heartbeat_tells_nothing_is_taken_over(heartbeat, tmp_path):
    path = tmp_path / "run.claim"
    text = json.dumps({"owner": "elsewhere:1:x", "heartbeat": heartbeat}).replace('"NaN"', "NaN")
    path.write_text(text.replace('"Infinity"', "Infinity").replace('"-Infinity"', "-Infinity"))
    old = time.time() - 3600
    os.utime(path, (old, old))  # written an hour ago: its time says stale
    c = claims.Claim(path, stale_s=60)
    assert c.acquire() and c.took_over == "elsewhere:1:x"
    c.release()


def test_a_claim_file_from_the_future_is_taken_over(tmp_path):
    path = tmp_path / "run.claim"
    path.write_text(json.dumps({"owner": "elsewhere:1:x", "heartbeat": time.time() + 10**6}))
    os.utime(path, (time.time() + 10**6,) * 2)  # its file's time too: a clock far off, or an edit
    c = claims.Claim(path, stale_s=60)
    assert c.acquire()
    c.release()


def _special(kind, path):
    if kind == "dangling-link":
        os.symlink(path.with_name("gone"), path)
    elif kind == "link":
        path.with_name("elsewhere").write_text("{}")
        os.symlink(path.with_name("elsewhere"), path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()


@pytest.mark.parametrize("kind, words", [("dangling-link", "which does not exist"), ("link", "a symbolic link"),
                                         ("fifo", "a named pipe"), ("folder", "a folder")])
def test_a_claim_that_is_a_link_or_special_file_is_reported_unusable(kind, words, tmp_path):
    path = tmp_path / "run.claim"
    _special(kind, path)
    result = []
    t = threading.Thread(target=lambda: result.append(pytest.raises(claims.UnusableClaim, claims.Claim(path).acquire)),
                         daemon=True)
    t.start()
    t.join(timeout=10)
    assert result, "acquire hung"
    assert words in str(result[0].value) and "remove it" in str(result[0].value)
    assert os.path.lexists(path)  # never replaced


@pytest.mark.parametrize("kind", ["dangling-link", "fifo"])
def test_a_sweep_reports_an_unusable_claim_and_runs_the_rest(kind, tmp_path, capsys):
    out = tmp_path / "s"
    (out / "claims").mkdir(parents=True)
    name = RUNS[1][0]
    _special(kind, out / "claims" / f"{name}.claim")
    status, text, err = run_main([*SWEEP, "--out", str(out)], capsys)
    assert status == 1 and "Traceback" not in err and "None" not in text + err
    assert "not run: claim" in text + err and "remove it" in text + err
    assert (out / "records" / f"{RUNS[0][0]}.json").exists() and not (out / "records" / f"{name}.json").exists()

# ------------------------------------------------- Ray resources and addresses, without Ray running (issue 18, class 7)

NODES = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]


@pytest.mark.parametrize("cpus, gpus, words", [(4, 0, "--cpus-per-run at most 2"), (1, 1, "--gpus-per-run 0"),
                                               (64, 8, "the largest node has 2 CPU(s)")])
def test_ray_resources_beyond_every_node_are_refused(cpus, gpus, words):
    with pytest.raises(ValueError, match="would wait for ever") as e:
        cluster.check_resources(NODES, cpus, gpus)
    assert words in str(e.value)
    cluster.check_resources(NODES, 2, 0)  # fits


def test_run_on_ray_checks_resources_before_submitting(tmp_path, monkeypatch):
    class FakeRay:
        is_initialized = staticmethod(lambda: True)
        cluster_resources = staticmethod(lambda: {"CPU": 2.0})
        nodes = staticmethod(lambda: NODES)

        @staticmethod
        def remote(f):
            raise AssertionError("submitted")

    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    with pytest.raises(ValueError, match="--cpus-per-run at most 2"):
        list(cluster.run_on_ray(tmp_path, RUNS, cpus_per_run=3))


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_nothing_answers_fails_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    port = closed_port()
    t0 = time.time()
    status, _, err = run_main([*SWEEP, "--engine", "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path)],
                              capsys)
    assert status == 2 and f"cannot reach a Ray cluster at --address 127.0.0.1:{port}" in err
    assert time.time() - t0 < 60 and "Traceback" not in err


def test_a_connect_that_times_out_names_the_address(monkeypatch):
    def hang(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(cluster.socket, "create_connection", hang)
    with pytest.raises(ValueError, match=r"ray://head:10001 \(no answer, waited up to 2 s\)"):
        cluster.check_reachable("ray://head:10001", timeout=2)
    cluster.check_reachable("auto")  # left to Ray


# ---------------------------------------------------------------- the Ray engine

def test_ray_writes_the_records_the_local_engine_writes(ray_cluster, local, tmp_path):
    summary = sw.sweep(tmp_path, **GRID, base=BASE, engine="ray", cpus_per_run=1, **QUIET)
    assert sorted(summary["ran"]) == sorted(names()) and not summary["claimed"]
    assert [r["sweep"]["name"] for r in summary["records"]] == names()  # plan order
    ours = records(tmp_path)
    assert sorted(ours) == sorted(local)
    for name in local:
        assert without_timing(ours[name]) == without_timing(local[name]), name
        assert ours[name]["config"]["threads"] == 1  # the one CPU its task was given
    again = sw.sweep(tmp_path, **GRID, base=BASE, engine="ray", **QUIET)  # done runs are not submitted
    assert again["ran"] == [] and len(again["skipped"]) == 6


def test_a_worker_killed_mid_run_is_retried_and_resumes(ray_cluster, tmp_path):
    base = replace(BASE, epochs=6)  # long enough to be caught between two checkpoints
    logs, result, killed = [], {}, []
    thread = threading.Thread(target=lambda: result.update(
        sw.sweep(tmp_path, **GRID, base=base, engine="ray", progress=False, log=logs.append)))
    thread.start()
    deadline = time.time() + 120
    while not killed and thread.is_alive() and time.time() < deadline:
        for claim in (tmp_path / "claims").glob("*.claim"):
            name = claim.stem
            if (tmp_path / "checkpoints" / f"{name}.pt").exists() and not (tmp_path / "records" / f"{name}.json").exists():
                try:
                    pid = int(json.loads(claim.read_text())["owner"].split(":")[1])
                    os.kill(pid, signal.SIGKILL)  # the Ray worker training it, mid-run
                except (OSError, ValueError, KeyError):
                    continue
                killed.append(name)
                break
        time.sleep(0.01)
    thread.join(timeout=240)
    assert killed and not thread.is_alive()
    assert sorted(result["ran"]) == sorted(names(base))
    for name in names(base):  # exactly one complete record per run
        r = load_record(tmp_path / "records" / f"{name}.json")
        assert r["status"] == "complete" and r["backprops"] == r["n_batches"] * 6
    assert len(list((tmp_path / "records").glob("*.json"))) == 6
    assert any(killed[0] in line and "took over the claim" in line for line in logs)  # the retry
    assert any(killed[0] in line and "(resumed)" in line for line in logs)  # from its checkpoint
    assert not list((tmp_path / "claims").glob("*.claim")) and not list((tmp_path / "checkpoints").glob("*.pt"))


def test_a_worker_that_cannot_see_the_folder_fails_naming_it_and_the_node(tmp_path):
    from hardbatch.cluster import OutNotShared, _check_out

    with pytest.raises(OutNotShared, match=rf"node {socket.gethostname()} does not see the sweep folder "
                                           rf"'{tmp_path}'.*shared filesystem"):
        _check_out(tmp_path, ".sweep-marker", socket.gethostname())
