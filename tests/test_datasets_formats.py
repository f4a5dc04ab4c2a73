"""The real data sets' loaders, on tiny files written in each data set's own on-disk format.

CIFAR-10/100 and STL-10 cannot be downloaded here, so these tests write a few images in the exact
formats the real archives hold (CIFAR's pickled batches, STL-10's column-major binaries,
Fashion-MNIST's IDX files) and read them back through `hardbatch.data.load_dataset`, which hands
them to torchvision's own dataset classes. torchvision checks the md5 of each CIFAR/STL file
against the real archive's; the tests point those checksums at the tiny files (the parsing code
stays torchvision's). Every image must come back pixel for pixel, the right way up. Processes unpacking
Debian's Fashion-MNIST at once each find whole files, and a damaged source is named and leaves no file.
"""
import gzip
import hashlib
import multiprocessing
import os
import pickle
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

import hardbatch as hb
from hardbatch import data
from hardbatch.data import load_dataset


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the real batches are Python 2 pickles


def _images(n, channels, size, seed):
    """(n, C, H, W) uint8 with one marked pixel in image 0: channel 0, row 3, column 5 = 255."""
    img = np.random.default_rng(seed).integers(0, 250, size=(n, channels, size, size), dtype=np.uint8)
    img[0, 0, 3, 5] = 255
    return img


def _assert_marked(x):
    assert x[0, 0, 3, 5] == 255 and x[0, 0, 5, 3] != 255  # row 3, column 5: not transposed


@pytest.fixture
def cifar10(tmp_path, monkeypatch):
    """5 training batches of 2 images and a test batch of 4, as in cifar-10-batches-py/."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train = _images(10, 3, 32, seed=0)
    test = _images(4, 3, 32, seed=1)
    y_train, y_test = list(range(10)), [3, 1, 4, 1]
    for b in range(5):  # each row: 1024 red, 1024 green, 1024 blue values, rows top to bottom
        _pickle(folder / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                                 "data": train[2 * b:2 * b + 2].reshape(2, 3072),
                                                 "labels": y_train[2 * b:2 * b + 2]})
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": test.reshape(4, 3072), "labels": y_test})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 2, "num_vis": 3072})
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{b}", _md5(folder / f"data_batch_{b}")] for b in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": _md5(folder / "batches.meta")})
    return tmp_path, train, test, y_train, y_test, names


def test_cifar10_batches_load_pixel_for_pixel(cifar10):
    root, train, test, y_train, y_test, names = cifar10
    data = load_dataset("cifar10", root=root)
    assert data.x_train.shape == (10, 3, 32, 32) and data.x_train.dtype == torch.uint8
    assert data.x_test.shape == (4, 3, 32, 32)
    assert torch.equal(data.x_train, torch.from_numpy(train)) and torch.equal(data.x_test, torch.from_numpy(test))
    _assert_marked(data.x_train)
    assert data.y_train.tolist() == y_train and data.y_test.tolist() == y_test and data.y_train.dtype == torch.long
    assert data.num_classes == 10 and list(data.classes) == names and data.in_chans == 3


def test_cifar100_uses_fine_labels(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train, test = _images(6, 3, 32, seed=2), _images(3, 3, 32, seed=3)
    fine_train, fine_test = [0, 99, 42, 7, 56, 99], [13, 0, 98]
    _pickle(folder / "train", {"data": train.reshape(6, 3072), "fine_labels": fine_train, "coarse_labels": [0] * 6})
    _pickle(folder / "test", {"data": test.reshape(3, 3072), "fine_labels": fine_test, "coarse_labels": [1] * 3})
    fine_names = [f"class{i}" for i in range(100)]
    _pickle(folder / "meta", {"fine_label_names": fine_names, "coarse_label_names": [f"super{i}" for i in range(20)]})
    monkeypatch.setattr(tvd.CIFAR100, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(tvd.CIFAR100, "test_list", [["test", _md5(folder / "test")]])
    monkeypatch.setattr(tvd.CIFAR100, "meta", {"filename": "meta", "key": "fine_label_names", "md5": _md5(folder / "meta")})

    data = load_dataset("cifar100", root=tmp_path)
    assert torch.equal(data.x_train, torch.from_numpy(train)) and torch.equal(data.x_test, torch.from_numpy(test))
    _assert_marked(data.x_train)
    assert data.y_train.tolist() == fine_train and data.y_test.tolist() == fine_test  # fine, not coarse
    assert data.num_classes == 100


def test_stl10_column_major_binaries(tmp_path, monkeypatch):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    train, test, unlabeled = _images(3, 3, 96, seed=4), _images(2, 3, 96, seed=5), _images(1, 3, 96, seed=6)
    column_major = lambda img: np.ascontiguousarray(img.transpose(0, 1, 3, 2)).tobytes()  # each channel column by column
    (folder / "train_X.bin").write_bytes(column_major(train))
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 5]))  # labels 1..10 on disk
    (folder / "test_X.bin").write_bytes(column_major(test))
    (folder / "test_y.bin").write_bytes(bytes([2, 3]))
    (folder / "unlabeled_X.bin").write_bytes(column_major(unlabeled))  # torchvision checks it is there
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    md5 = {n: _md5(folder / n) for n in ("train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin")}
    monkeypatch.setattr(tvd.STL10, "train_list", [[n, md5[n]] for n in ("train_X.bin", "train_y.bin", "unlabeled_X.bin")])
    monkeypatch.setattr(tvd.STL10, "test_list", [[n, md5[n]] for n in ("test_X.bin", "test_y.bin")])

    data = load_dataset("stl10", root=tmp_path)
    assert data.x_train.shape == (3, 3, 96, 96) and data.x_train.dtype == torch.uint8
    assert torch.equal(data.x_train, torch.from_numpy(train)) and torch.equal(data.x_test, torch.from_numpy(test))
    _assert_marked(data.x_train)
    assert data.y_train.tolist() == [0, 9, 4] and data.y_test.tolist() == [1, 2]  # 0-based
    assert data.num_classes == 10 and list(data.classes) == names


def test_fashion_mnist_idx_files(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    train, test = _images(5, 1, 28, seed=7)[:, 0], _images(2, 1, 28, seed=8)[:, 0]  # (n, 28, 28)
    for prefix, x, y in (("train", train, [9, 0, 0, 3, 1]), ("t10k", test, [2, 7])):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(y)) + bytes(y))

    data = load_dataset("fashion-mnist", root=tmp_path)  # these files, not Debian's: they are already there
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (2, 1, 28, 28)
    assert torch.equal(data.x_train[:, 0], torch.from_numpy(train)) and torch.equal(data.x_test[:, 0], torch.from_numpy(test))
    _assert_marked(data.x_train)
    assert data.y_train.tolist() == [9, 0, 0, 3, 1] and data.y_test.tolist() == [2, 7]
    assert data.num_classes == 10 and data.classes[9] == "Ankle boot"


def test_a_missing_data_set_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        load_dataset("cifar10", root=tmp_path)


def test_training_runs_end_to_end_on_the_cifar_files(cifar10, monkeypatch):
    """hb.train loads cfg.dataset itself from $HARDBATCH_DATA: the whole path, files to run record."""
    root = cifar10[0]
    monkeypatch.setenv("HARDBATCH_DATA", str(root))
    cfg = hb.RunConfig(dataset="cifar10", model="small_cnn", method="hardbatch", delta=0.5, epochs=2,
                       batch_size=2, image_size=16, augment=True, device="cpu")
    record = hb.train(cfg)
    assert record["status"] == "complete"
    assert record["n_train"] == 10 and record["n_test"] == 4 and record["n_batches"] == 5
    assert record["backprops"] == 5 * 2 and len(record["history"]) == 3
    assert sum(record["batch_train_counts"]) == 10


# ---------------------------------------------------------------- Fashion-MNIST without Debian's files

def _write_idx(raw, train, test, y_train, y_test):
    """Fashion-MNIST's four IDX files (uncompressed, as torchvision leaves them after its download)."""
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, x, y in (("train", train, y_train), ("t10k", test, y_test)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(y)) + bytes(y))


@pytest.fixture
def no_debian(monkeypatch):
    """A machine without Debian's dataset-fashion-mnist, whatever this one has."""
    from hardbatch import data
    monkeypatch.setattr(data, "unpack_debian_fashion_mnist", lambda root, source=None: False)


def test_fashion_mnist_comes_through_torchvisions_download(tmp_path, monkeypatch, no_debian):
    """No Debian files: torchvision's own download runs (stubbed: it writes tiny IDX files), with one line said."""
    from torchvision.datasets import mnist

    from hardbatch.data import load_fashion_mnist
    train, test = _images(4, 1, 28, seed=9)[:, 0], _images(2, 1, 28, seed=10)[:, 0]
    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append(filename)
        _write_idx(tmp_path / "FashionMNIST" / "raw", train, test, [1, 2, 3, 4], [5, 6])

    monkeypatch.setattr(mnist, "download_and_extract_archive", fake_download)
    said = []
    data = load_fashion_mnist(root=tmp_path, log=said.append)
    assert calls, "torchvision's download was not asked for"
    assert len(said) == 1 and "downloading" in said[0] and "\n" not in said[0]
    assert data.name == "fashion-mnist" and torch.equal(data.x_train[:, 0], torch.from_numpy(train))
    assert data.y_test.tolist() == [5, 6] and data.classes[9] == "Ankle boot"
    _assert_marked(data.x_train)


def test_without_network_a_chapter_falls_back_to_digits_and_warns_of_the_ceiling(tmp_path, monkeypatch, no_debian):
    from urllib.error import URLError

    from torchvision.datasets import mnist

    from hardbatch.data import FallbackWarning, load_fashion_mnist

    def no_network(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mnist, "download_and_extract_archive", no_network)
    with pytest.warns(FallbackWarning, match=r"falls back to digits.*every arm reaches 97–99 %.*ceiling"):
        data = load_fashion_mnist(root=tmp_path, log=lambda line: None)
    assert data.name == "digits"
    with pytest.raises((OSError, RuntimeError), match="Error downloading"):  # fallback=None: the error itself
        load_fashion_mnist(root=tmp_path, fallback=None, log=lambda line: None)


def test_fashion_mnist_files_already_there_need_no_download(tmp_path, monkeypatch, no_debian):
    from torchvision.datasets import mnist

    from hardbatch.data import load_fashion_mnist
    _write_idx(tmp_path / "FashionMNIST" / "raw", _images(3, 1, 28, seed=11)[:, 0], _images(1, 1, 28, seed=12)[:, 0],
               [0, 1, 2], [3])
    monkeypatch.setattr(mnist, "download_and_extract_archive", lambda *a, **k: pytest.fail("downloaded"))
    said = []
    assert load_fashion_mnist(root=tmp_path, log=said.append).name == "fashion-mnist" and said == []


def test_chapters_4_to_6_load_fashion_mnist_the_way_that_downloads():
    """Colab and Binder have no Debian package: the chapters must ask for the loader that downloads."""
    import nbformat
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("04_matching_the_budget", "05_full_gpu_experiments", "06_beyond_the_paper"):
        source = "\n".join(c.source for c in nbformat.read(root / f"{name}.ipynb", as_version=4).cells
                           if c.cell_type == "code")
        assert "hb.load_fashion_mnist()" in source, f"{name} does not load Fashion-MNIST with load_fashion_mnist"


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "20"])
def test_a_bad_download_timeout_is_refused_by_name(timeout):
    from hardbatch.data import load_fashion_mnist
    with pytest.raises(ValueError, match="timeout="):
        load_fashion_mnist(timeout=timeout)


CHAPTER_WITHOUT_DEBIAN = r'''
import json, struct, sys
from pathlib import Path

import numpy as np
from torchvision.datasets import mnist

import hardbatch as hb
from hardbatch import data as D

D.unpack_debian_fashion_mnist = lambda root, source=None: False  # a machine without Debian's package (Colab)
asked = []


def download(url, download_root, filename=None, md5=None, **kwargs):  # torchvision's download, stubbed
    asked.append(filename)
    raw, rng = Path(download_root), np.random.default_rng(0)
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 600), ("t10k", 400)):
        x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + y.tobytes())


mnist.download_and_extract_archive = download
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
for source in json.loads(sys.argv[1]):  # the chapter's cells, up to the one that loads its data
    shell.run_cell(source).raise_error()
ns = shell.user_ns
names = [ns["data"].name] if "data" in ns else list(ns["datasets"])
if "data" in ns:  # the chapter's own subset trains, one epoch of Algorithm 1
    cfg = hb.RunConfig(method="minibatch", dataset=ns["data"].name, epochs=1, batch_size=32,
                       image_size=ns["IMAGE_SIZE"], threads=1)
    trained = hb.train(cfg, data=ns["data"])["status"]
else:  # chapter 5 hands the name to its sweep, which loads it by name from the same folder
    trained = "loads" if hb.load_dataset(names[0]).name == names[0] else "missing"
print(json.dumps({"asked": len(asked), "names": names, "trained": trained}))
'''


@pytest.mark.parametrize("chapter", ["04_matching_the_budget", "05_full_gpu_experiments", "06_beyond_the_paper"])
def test_chapters_4_to_6_train_on_fashion_mnist_through_the_download(chapter, tmp_path):
    """Colab and Binder have no Debian package: run a chapter's cells up to its data (fast mode) in a fresh
    process where Debian's files are hidden and torchvision's download is stubbed, and train on what it loaded."""
    import json
    import os
    import subprocess
    import sys

    import nbformat
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / f"{chapter}.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    upto = next(i for i, source in enumerate(code) if "hb.load_fashion_mnist()" in source)
    env = {**os.environ, "HARDBATCH_SMOKE": "1", "HARDBATCH_DATA": str(tmp_path / "data"), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", CHAPTER_WITHOUT_DEBIAN, json.dumps(code[:upto + 1])], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert said["asked"] >= 1, "torchvision's download was not asked for"
    assert said["names"] == ["fashion-mnist"] and said["trained"] in ("complete", "loads"), said
    assert "falls back to digits" not in proc.stderr


# ------------------------------------------------------------------ unpacking Fashion-MNIST at once (issue 18, class 1)

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
