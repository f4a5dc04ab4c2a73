"""Issue 18: the same command gives the same numbers whatever the machine's load, and reliability round three.

Threads: a run's default thread count is a function of its model and of the CPUs the process may use
(1 for our small nets), never of the momentary load, so `run` and `compare` give identical numbers with
a CPU-burning process beside them; a resume keeps the run's count, or records every count it ran with.
Then one test (or a few) per failure class of the issue, numbered as there.
"""
import copy
import gzip
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import hardbatch as hb
from hardbatch import arms, checkpoint, claims, cluster, config, data, paper, sweep
from hardbatch.record import without_timing
from helpers import run_main

TINY = dict(epochs=2, batch_size=32, subset=128, device="cpu")
RUN = ["run", "--epochs", "2", "--batch-size", "32", "--subset", "128", "--device", "cpu"]
SWEEP = ["sweep", "--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--controls",
         "--epochs", "1", "--batch-size", "32", "--subset", "64", "--image-size", "0", "--device", "cpu",
         "--no-report"]
SWEEP_BASE = hb.RunConfig(epochs=1, batch_size=32, subset=64, lr=0.005, momentum=0.9, weight_decay=0.0)
RUNS = sweep.plan(["small_cnn"], ["digits"], [0.5], [0], controls=(), base=SWEEP_BASE)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def good_record(digits):
    return hb.train(hb.RunConfig(**TINY, threads=1), data=digits)


def env_without_threads():
    """The environment of a user who set nothing: hardbatch chooses the threads (conftest sets OMP_NUM_THREADS)."""
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def hardbatch_cli(argv, cwd, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "hardbatch", *argv], cwd=cwd, env=env or env_without_threads(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


BURN = "while True:\n    pass\n"


class Burners:
    """One CPU-burning process per core, for the length of a `with` block."""

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


# ------------------------------------------------------------------ 1. the same command, the same numbers

def test_run_gives_the_same_numbers_beside_a_busy_process(tmp_path):
    hardbatch_cli([*RUN, "--out", "quiet.json"], tmp_path)
    with Burners():
        hardbatch_cli([*RUN, "--out", "busy.json"], tmp_path)
    quiet, busy = (hb.load_record(tmp_path / f"{n}.json") for n in ("quiet", "busy"))
    assert quiet["config"]["threads"] == busy["config"]["threads"] == 1  # small_cnn: one thread, busy or not
    assert without_timing(quiet) == without_timing(busy)


def test_compare_gives_the_same_numbers_beside_a_busy_process(tmp_path):
    argv = ["compare", "--seeds", "0", "--deltas", "0.5", "--strategies", "hardest", "random", "--epochs", "2",
            "--batch-size", "32", "--subset", "128", "--device", "cpu"]
    hardbatch_cli([*argv, "--out", "quiet"], tmp_path)
    with Burners():
        hardbatch_cli([*argv, "--out", "busy"], tmp_path)
    quiet, busy = ({p.name: without_timing(hb.load_record(p)) for p in (tmp_path / d / "records").glob("*.json")}
                   for d in ("quiet", "busy"))
    assert len(quiet) == 3 and quiet == busy


def test_the_default_thread_count_ignores_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "idle_cpus", lambda *a, **k: pytest.fail("the load was looked at"))
    assert config.resolve_threads(0, "small_cnn") == 1
    assert config.resolve_threads(0, "resnet18") == config.available_cpus()


def stop_at_epoch_1(cfg, digits, ck):
    n = -(-cfg.subset // cfg.batch_size)

    def stop(step, batch, loss):
        if step == n + 1:
            raise Stop

    with pytest.raises(Stop):
        hb.train(cfg, data=digits, checkpoint=ck, on_step=stop)


@pytest.mark.skipif(config.available_cpus() < 2, reason="needs 2 usable CPUs")
def test_a_resume_keeps_the_runs_thread_count_or_records_both(digits, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        ck = tmp_path / "a.pt"
        stop_at_epoch_1(hb.RunConfig(**TINY, threads=2), digits, ck)
        kept = hb.train(hb.RunConfig(**TINY), data=digits, checkpoint=ck, resume=True)  # the default: keep 2
        assert kept["config"]["threads"] == 2 and kept["threads_used"] == [2]
        whole = hb.train(hb.RunConfig(**TINY, threads=2), data=digits)
        assert without_timing(kept) == without_timing({**whole, "config": {**whole["config"], "threads": 2}})

        ck = tmp_path / "b.pt"
        stop_at_epoch_1(hb.RunConfig(**TINY, threads=1), digits, ck)
        other = hb.train(hb.RunConfig(**TINY, threads=2), data=digits, checkpoint=ck, resume=True)
        assert other["config"]["threads"] == 2 and other["threads_used"] == [1, 2]
        hb.save_record(other, tmp_path / "r.json")
        assert hb.load_record(tmp_path / "r.json")["threads_used"] == [1, 2]
    finally:
        torch.set_num_threads(1)


def test_an_older_record_without_threads_used_still_loads(good_record, tmp_path):
    old = {k: v for k, v in good_record.items() if k != "threads_used"}
    hb.save_record(old, tmp_path / "old.json")
    assert "threads_used" not in hb.load_record(tmp_path / "old.json")


@pytest.mark.parametrize("used", [[], [0], [1.5], ["2"], [True], [2000], "1"])
def test_a_record_with_bad_thread_counts_is_refused(used, good_record, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({**good_record, "threads_used": used}))
    with pytest.raises(ValueError, match="threads_used"):
        hb.load_record(tmp_path / "r.json")


# ------------------------------------------------------------------ class 8: threads bounded by the usable CPUs

@pytest.mark.parametrize("threads", ["1024", "3", str(os.cpu_count() + 1)])
def test_threads_above_the_usable_cpus_are_refused(threads, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(config, "available_cpus", lambda: 2)
    status, _, err = run_main([*RUN, "--threads", threads, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 2 and "--threads must be an integer from 1 to 2" in err and threads in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("value, words", [("1024", "OMP_NUM_THREADS='1024' must be an integer from 1 to 2"),
                                          ("4,2,1024", "OMP_NUM_THREADS='4,2,1024' must be an integer from 1 to 2"),
                                          ("abc", "OMP_NUM_THREADS='abc' is not understood"),
                                          ("0", "OMP_NUM_THREADS='0' is not understood"),
                                          ("-4", "is not understood")])
def test_omp_num_threads_above_the_usable_cpus_or_not_a_number_is_refused(value, words, tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setattr(config, "available_cpus", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    status, _, err = run_main([*RUN, "--out", str(tmp_path / "r.json")], capsys)
    assert status == 2 and words in err and "Traceback" not in err
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        hb.train(hb.RunConfig(**TINY))


def test_omp_num_threads_in_list_form_counts_its_first_level(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1,4")
    assert config.resolve_threads(0, "resnet18") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "\u0661")  # an Arabic-Indic one: Python reads it, OpenMP does not
    with pytest.raises(ValueError, match="is not understood"):
        config.resolve_threads(0, "resnet18")


# ------------------------------------------------------------------ class 1: unpacking Fashion-MNIST at once

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def fake_debian(tmp_path):
    """Four .gz files of a few MB each, standing in for Debian's package."""
    source = tmp_path / "debian"
    source.mkdir()
    contents = {}
    for i, n in enumerate(NAMES):
        contents[n] = os.urandom(256 * 1024) * (12 - 2 * i)  # compresses poorly: the copy takes a while
        with gzip.open(source / f"{n}.gz", "wb", compresslevel=1) as f:
            f.write(contents[n])
    return source, contents


def _unpack(root, source, queue):
    try:
        queue.put(data.unpack_debian_fashion_mnist(root, source))
    except BaseException as e:  # noqa: BLE001 (reported to the test)
        queue.put(f"{type(e).__name__}: {e}")


def test_processes_unpacking_at_once_each_find_whole_files(fake_debian, tmp_path):
    source, contents = fake_debian
    root = tmp_path / "root"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_unpack, args=(root, source, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == [True] * 4
    raw = root / "FashionMNIST" / "raw"
    for n in NAMES:
        assert (raw / n).read_bytes() == contents[n]
    assert not [p.name for p in raw.iterdir() if p.name.endswith(".tmp")]


def test_unpacking_waits_for_the_lock_and_never_shows_half_a_file(fake_debian, tmp_path):
    import fcntl

    source, contents = fake_debian
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / f".{NAMES[0]}.tmp").write_bytes(b"half of an older unpack")  # a leftover never read
    done = []
    with open(raw / ".unpack.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another process is unpacking
        t = threading.Thread(target=lambda: done.append(data.unpack_debian_fashion_mnist(tmp_path / "root", source)))
        t.start()
        time.sleep(1.0)
        assert not done and not any((raw / n).exists() for n in NAMES)
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    t.join(timeout=60)
    assert done == [True] and all((raw / n).read_bytes() == contents[n] for n in NAMES)


def test_a_damaged_source_is_named_and_leaves_no_file(fake_debian, tmp_path):
    source, _ = fake_debian
    (source / f"{NAMES[1]}.gz").write_bytes((source / f"{NAMES[1]}.gz").read_bytes()[:1000])  # truncated
    with pytest.raises(OSError, match=f"could not unpack .*{NAMES[1]}.gz"):
        data.unpack_debian_fashion_mnist(tmp_path / "root", source)
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    assert not (raw / NAMES[1]).exists() and not [p for p in raw.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ class 2: claims that tell nothing

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


# ------------------------------------------------------------------ class 3: flipped bytes in a checkpoint

def flip_in_file(path, tensor):
    """Flip the lowest bit of the first float of `tensor`'s bytes inside the file at `path` (stays finite)."""
    blob, needle = bytearray(path.read_bytes()), tensor.contiguous().view(torch.uint8).numpy().tobytes()[:16]
    at = blob.find(needle)
    assert at >= 0 and blob.find(needle, at + 1) < 0
    blob[at] ^= 1
    path.write_bytes(bytes(blob))


def test_flipped_bytes_in_a_checkpoint_are_refused(digits, tmp_path):
    cfg = hb.RunConfig(**TINY, threads=1)
    ck = tmp_path / "ck.pt"
    stop_at_epoch_1(cfg, digits, ck)
    payload = torch.load(ck, weights_only=True)
    assert payload["sha256"] == checkpoint.digest(payload)  # saved again as it is: the same contents
    flip_in_file(ck, payload["model"]["head.weight"])
    assert torch.load(ck, weights_only=True)["sha256"] == payload["sha256"]  # torch itself does not notice
    with pytest.raises(checkpoint.BadCheckpoint, match="do not match the checksum"):
        hb.train(cfg, data=digits, checkpoint=ck, resume=True)


def test_a_sweep_restarts_a_run_whose_checkpoint_has_flipped_bytes(digits, tmp_path, capsys):
    out = tmp_path / "s"
    cfg = hb.RunConfig(**{**RUNS[1][1].to_dict(), "epochs": 2})
    name = arms.record_name(cfg)
    argv = [*SWEEP[:SWEEP.index("--epochs")], "--epochs", "2", *SWEEP[SWEEP.index("--epochs") + 2:]]
    ck = out / "checkpoints" / f"{name}.pt"
    ck.parent.mkdir(parents=True)
    stop_at_epoch_1(cfg, digits, ck)
    flip_in_file(ck, torch.load(ck, weights_only=True)["model"]["head.weight"])
    status, text, err = run_main([*argv, "--out", str(out)], capsys)
    assert status == 0 and "checksum" in text + err and "starting over" in text + err
    whole = hb.train(cfg, data=digits)
    assert without_timing(hb.load_record(out / "records" / f"{name}.json"))["history"] == \
        without_timing(whole)["history"]


# ------------------------------------------------------------------ class 4: folders a report cannot read

def test_report_follows_a_linked_folder_and_survives_a_loop(good_record, tmp_path):
    real, folder = tmp_path / "elsewhere", tmp_path / "results"
    real.mkdir()
    folder.mkdir()
    hb.save_record(good_record, real / "r.json")
    os.symlink(real, folder / "linked")
    os.symlink(folder, folder / "loop")  # a link back up: read once, never for ever
    records, skipped = paper.read_records(folder)
    assert len(records) == 1 and skipped == []
    os.symlink(tmp_path / "unmounted", folder / "gone")  # a link to a folder that is not there (any more)
    _, skipped = paper.read_records(folder)
    assert [(p.name, "which does not exist" in why) for p, why in skipped] == [("gone", True)]


def test_report_lists_a_folder_it_cannot_read(good_record, tmp_path, monkeypatch):
    folder = tmp_path / "results"
    (folder / "locked").mkdir(parents=True)
    hb.save_record(good_record, folder / "r.json")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":  # as chmod 000 does for anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = paper.write_report(folder, make_figures=False)
    assert result["records"] == 1
    assert [(p.name, "Permission denied" in why) for p, why in result["skipped"]] == [("locked", True)]
    assert "skipped `locked`: a folder that could not be read (Permission denied)" in result["markdown"]


# ------------------------------------------------------------------ class 5: copies of one run that disagree

def own_name(r):
    return f"{arms.record_name(r['config'])}.json"


def test_the_record_under_the_runs_own_name_is_preferred_and_a_disagreeing_copy_listed(good_record, tmp_path):
    edited = copy.deepcopy(good_record)
    edited["history"][-1]["test_acc"] = 99.9
    hb.save_record(edited, tmp_path / "a-copy.json")  # sorts first
    hb.save_record(good_record, tmp_path / own_name(good_record))
    records, skipped = paper.read_records(tmp_path)
    assert records[0]["history"][-1]["test_acc"] == good_record["history"][-1]["test_acc"]
    assert [p.name for p, _ in skipped] == ["a-copy.json"] and "disagrees with" in skipped[0][1]


def test_a_diverged_copy_never_displaces_a_complete_record(good_record, tmp_path):
    diverged = copy.deepcopy(good_record)
    diverged.update(status="diverged", backprops=diverged["n_batches"])
    diverged["history"] = diverged["history"][:2]
    diverged["batch_train_counts"] = [1] * diverged["n_batches"]
    hb.save_record(diverged, tmp_path / own_name(good_record))  # even under the run's own name
    hb.save_record(good_record, tmp_path / "zz-copy.json")
    records, skipped = paper.read_records(tmp_path)
    assert records[0]["status"] == "complete"
    assert "disagrees" in skipped[0][1] and "(diverged)" in skipped[0][1]


def test_identical_copies_are_counted_once_quietly(good_record, tmp_path):
    hb.save_record(good_record, tmp_path / own_name(good_record))
    hb.save_record({**good_record, "sweep": {"name": "x"}}, tmp_path / "copy.json")
    records, skipped = paper.read_records(tmp_path)
    assert len(records) == 1 and "counted once" in skipped[0][1]


# ------------------------------------------------------------------ class 6: records a sweep cannot read

@pytest.mark.parametrize("change", ["newer-schema", "older-version", "of-another-run", "garbage"])
def test_a_sweep_moves_an_unreadable_record_aside_and_never_overwrites(change, tmp_path, capsys):
    out = tmp_path / "s"
    assert run_main([*SWEEP, "--out", str(out)], capsys)[0] == 0
    name = RUNS[1][0]
    path = out / "records" / f"{name}.json"
    r = json.loads(path.read_text())
    text = {"newer-schema": lambda: json.dumps({**r, "config": {**r["config"], "a_knob_of_version_9": 1}}),
            "older-version": lambda: json.dumps({k: v for k, v in r.items() if k != "torch"}),
            "of-another-run": lambda: (out / "records" / f"{RUNS[0][0]}.json").read_text(),
            "garbage": lambda: "{not json"}[change]()
    for n in (1, 2):  # twice: the second set-aside never replaces the first
        path.write_text(text)
        status, out_text, err = run_main([*SWEEP, "--out", str(out)], capsys)
        assert status == 0 and "Traceback" not in err
        assert f"moved it to {name}.json.unreadable-{n}" in out_text + err
        assert (out / "records" / f"{name}.json.unreadable-{n}").read_text() == text
        assert hb.load_record(path)["status"] == "complete"


# ------------------------------------------------------------------ class 7: Ray resources and addresses

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


# ------------------------------------------------------------------ class 9: Ctrl-C twice, or early

@pytest.mark.parametrize("gap", [0.0, 0.01, 0.3])  # while it stops, or while Python shuts down
def test_ctrl_c_twice_quickly_is_one_line_and_130(gap, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hardbatch", "run", "--epochs", "400", "--subset", "256",
                             "--batch-size", "16", "--device", "cpu", "--out", "r.json", "--checkpoint", "ck.pt"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (tmp_path / "ck.pt").exists():
        assert proc.poll() is None and time.time() - t0 < 240, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hardbatch: ")


def test_ctrl_c_while_the_command_starts_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    from hardbatch import cli

    def interrupted():
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the parser is being built
        time.sleep(1)

    monkeypatch.setattr(cli, "_robust_output", interrupted)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when pytest runs in the background
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whoever started pytest
    try:
        status, _, err = run_main(["run", "--out", str(tmp_path / "r.json")], capsys)
        assert status == 130 and err == "hardbatch: interrupted\n"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # called in-process: put back
    finally:
        signal.signal(signal.SIGINT, before)


def _ctrl_c_as_in_a_terminal():
    """A child started from a shell script in the background inherits SIGINT ignored (POSIX shells do that for
    `&` jobs), and then rightly ignores Ctrl-C; the tests start theirs as a terminal would, whoever runs pytest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.3, 1.0])  # while Python starts, while torch loads, while parsing
def test_a_signal_in_the_first_second_is_one_line_never_a_traceback(sig, after, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hardbatch", "run", "--epochs", "400", "--subset", "256",
                             "--device", "cpu", "--out", "r.json"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    time.sleep(after)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode in (128 + sig, -sig), (proc.returncode, err)  # -sig: before Python's own handlers
    assert len(err.strip().splitlines()) <= 1 and (not err or err.startswith("hardbatch: "))
    assert not (tmp_path / "r.json").exists()


def test_importing_the_package_loads_no_torch():
    # what makes the above possible: `import hardbatch` is instant; torch loads with the first name used
    code = "import sys, hardbatch as hb; assert 'torch' not in sys.modules; hb.Ledger; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ class 10: models that cannot be trained

class Wraps(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how, self.fc = how, nn.Linear(64, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return {"tuple": lambda: (out, out), "dict": lambda: {"logits": out}, "int": lambda: out.argmax(1, True)
                .expand(-1, 10), "detached": lambda: out.detach(), "long": lambda: out.long(),
                "type-error": lambda: out + "x"}[self.how]()


class NoWeights(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10).requires_grad_(False)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("model, words", [
    (Wraps("tuple"), "returns tuple, not a tensor"), (Wraps("dict"), "returns dict, not a tensor"),
    (Wraps("int"), "torch.int64 outputs"), (Wraps("long"), "torch.int64 outputs"),
    (Wraps("detached"), "do not depend on its weights"), (Wraps("type-error"), "cannot take the digits images"),
    (NoWeights(), "has no weights that train"), (Frozen(), "has no weights that train")])
def test_a_model_that_cannot_be_trained_is_refused_before_training(model, words, digits):
    steps = []
    with pytest.raises(ValueError, match="model 'small_cnn'") as e:
        hb.train(hb.RunConfig(**TINY, threads=1), data=digits, model=model, on_step=lambda *a: steps.append(a))
    assert words in str(e.value) and steps == []


# ------------------------------------------------------------------ class 11: batch counts; odd records in a report

@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(n_train=r["n_train"] + 64), "differs from the config's subset"),
    (lambda r: r["config"].update(subset=0) or r.update(n_train=10 * r["n_train"]), "does not fit n_train"),
    (lambda r: r["config"].update(batch_size=16, subset=0), "does not fit n_train"),
    (lambda r: r["config"].update(drop_last=True, subset=0) or r.update(n_train=r["n_train"] + 40),
     "expected floor(168/32) = 5"),
    (lambda r: r["config"].update(batch_size=1000, subset=0), "larger than the 128 training samples")])
def test_a_record_whose_batch_count_does_not_fit_is_refused(change, words, good_record, tmp_path):
    r = copy.deepcopy(good_record)
    change(r)
    (tmp_path / "r.json").write_text(json.dumps(r))
    with pytest.raises(ValueError, match="r.json: ") as e:
        hb.load_record(tmp_path / "r.json")
    assert words in str(e.value)


def test_a_drop_last_record_with_floor_batches_loads(digits, tmp_path):
    r = hb.train(hb.RunConfig(epochs=1, batch_size=30, subset=100, drop_last=True, device="cpu", threads=1), data=digits)
    assert r["n_batches"] == 3
    hb.save_record(r, tmp_path / "r.json")
    hb.load_record(tmp_path / "r.json")


def test_a_file_name_that_is_not_utf8_does_not_stop_a_report(good_record, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    hb.save_record(good_record, folder / "good.json")
    bad = os.fsdecode(b"odd-\xff\xfe.json")
    (folder / bad).write_text("{not json")
    hb.save_record(good_record, folder / os.fsdecode(b"copy-\xff.json"))
    result = paper.write_report(folder, make_figures=False)
    assert result["records"] == 1 and len(result["skipped"]) == 2
    md = (folder / "report" / "report.md").read_text(encoding="utf-8")
    assert "odd-\ufffd\ufffd.json" in md and "copy-\ufffd.json" in md


@pytest.mark.parametrize("text, why", [("{", "not a readable run record"), ("[]", "must be a JSON object, got list"),
                                       ('{"schema": 999}', "lacks the key 'config'"),
                                       ('{"config": 1}', "'config' should be dict, got int")])
def test_a_report_with_only_unreadable_records_names_them_and_why(text, why, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r.json").write_text(text)
    status, _, err = run_main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")], capsys)
    assert status == 2 and "1 unreadable .json files: r.json: " in err and why in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
