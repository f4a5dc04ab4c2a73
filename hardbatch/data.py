"""Data sets as tensors that sit on the training device.

Every data set is loaded once, through its own real loader (scikit-learn's `load_digits`, or
the torchvision class that reads the data set's files), into uint8 tensors (n, C, H, W).
Resizing, normalising and augmentation then run batch by batch on the device (`preprocess`),
the airbench way: a batch that Algorithm 2 skips costs nothing, and no DataLoader worker
walks over it.

Offline use: `digits` ships inside scikit-learn. Fashion-MNIST is read by torchvision from
ROOT/FashionMNIST/raw/; where Debian's package `dataset-fashion-mnist` is installed, its
files are unpacked there for you. CIFAR-10/100 and STL-10 need `download=True` once. The
chapters load Fashion-MNIST through `load_fashion_mnist`: Debian's files, else torchvision's
download, else (no network) digits, with a warning that says what that costs.
"""
import contextlib
import functools
import gzip
import math
import os
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "stl10")
# (channels, side, classes, training images) of each data set: lets a sweep check every run before loading any data
SHAPES = {"digits": (1, 8, 10, 1297), "fashion-mnist": (1, 28, 10, 60000), "cifar10": (3, 32, 10, 50000),
          "cifar100": (3, 32, 100, 50000), "stl10": (3, 96, 10, 5000)}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def default_root():
    """Where data sets live: $HARDBATCH_DATA, else ~/.cache/hardbatch."""
    return Path(os.environ.get("HARDBATCH_DATA", Path.home() / ".cache" / "hardbatch")).expanduser()


@dataclass
class ImageData:
    name: str
    x_train: torch.Tensor  # (n, C, H, W) uint8
    y_train: torch.Tensor  # (n,) long
    x_test: torch.Tensor  # (m, C, H, W) uint8
    y_test: torch.Tensor  # (m,) long
    num_classes: int
    mean: tuple  # per channel, on the 0..1 scale
    std: tuple
    classes: tuple = ()

    def __post_init__(self):
        self.check()

    def check(self):
        """Refuse data that would fail (or silently mislead) only later, in training: checked whenever an
        ImageData is made (so also by every subset, test sample and move to a device), and by those three
        before they start, in case a field was changed since."""
        name = self.name
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4 or 0 in x.shape[1:]:
                raise ValueError(f"{name}: x_{split} must be a uint8 tensor of shape (n, C, H, W), got "
                                 f"{type(x).__name__} {getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}")
            if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != x.shape[:1]:
                raise ValueError(f"{name}: y_{split} must be an int64 tensor of one label per image "
                                 f"({x.shape[0]}), got {type(y).__name__} {getattr(y, 'dtype', '')} "
                                 f"{tuple(getattr(y, 'shape', ()))}")
            if len(y) == 0:
                raise ValueError(f"{name}: the {split} set is empty; a run needs at least one {split} image")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(f"{name}: test images {tuple(self.x_test.shape[1:])} differ from training images "
                             f"{tuple(self.x_train.shape[1:])} (C, H, W)")
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 1:
            raise ValueError(f"{name}: num_classes must be an integer >= 1, got {self.num_classes!r}")
        for split in ("train", "test"):
            y = getattr(self, f"y_{split}")
            low, high = int(y.min()), int(y.max())  # one host sync each, when the data are made
            if low < 0 or high >= self.num_classes:
                raise ValueError(f"{name}: {split} labels must be in 0..{self.num_classes - 1} (num_classes="
                                 f"{self.num_classes}), found {low if low < 0 else high}")
        for stat_name in ("mean", "std"):
            value = getattr(self, stat_name)
            ok = isinstance(value, tuple) and len(value) == self.in_chans and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            if not ok or (stat_name == "std" and min(value) <= 0):
                raise ValueError(f"{name}: {stat_name} must be a tuple of {self.in_chans} finite number(s), one per channel"
                                 f"{' (each > 0)' if stat_name == 'std' else ''}, got {value!r}")

    @property
    def in_chans(self):
        return self.x_train.shape[1]

    @property
    def size(self):
        return self.x_train.shape[-1]

    def to(self, device):
        """The same data on `device` (uint8 stays uint8: 4x less memory than float)."""
        self.check()
        return replace(self, **{k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")})

    @staticmethod
    def fixed_sample(n_total, n, seed=0):
        """Indices of a fixed, seeded choice of `n` of `n_total` samples (all of them, in order, when n is 0
        or at least n_total). The same for every run, so every arm is measured on the same images."""
        if not n or n >= n_total:
            return torch.arange(n_total)
        return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values

    def subset(self, n_train, seed=0):
        """Only `n_train` training samples (a fixed, seeded choice)."""
        self.check()
        if not 1 <= n_train <= len(self.y_train):
            raise ValueError(f"subset must be between 1 and the {len(self.y_train)} training samples, got {n_train}")
        idx = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))[:n_train]
        return replace(self, x_train=self.x_train[idx.to(self.x_train.device)], y_train=self.y_train[idx.to(self.y_train.device)])

    def test_sample(self, n_test):
        """Only `n_test` test samples (a fixed, seeded choice; all when n_test is 0 or too large)."""
        self.check()
        idx = self.fixed_sample(len(self.y_test), n_test).to(self.y_test.device)
        return replace(self, x_test=self.x_test[idx], y_test=self.y_test[idx])


def _stats(x):
    x = x.float() / 255
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


def _from_arrays(name, x_train, y_train, x_test, y_test, classes):
    """Build ImageData from (n, H, W), (n, H, W, C) or (n, C, H, W) uint8 arrays."""
    xs = []
    for x in (x_train, x_test):
        x = torch.as_tensor(x)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        xs.append(x.contiguous().to(torch.uint8))
    ys = [torch.as_tensor(y, dtype=torch.long) for y in (y_train, y_test)]
    mean, std = _stats(xs[0])
    return ImageData(name, xs[0], ys[0], xs[1], ys[1], len(classes), mean, std, tuple(classes))


def load_digits(test_size=500):
    """scikit-learn's 8x8 handwritten digits (1797 images), split once with a fixed seed."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = torch.as_tensor(d.images * (255 / 16)).round().to(torch.uint8)  # (1797, 8, 8), 0..16 -> 0..255
    y = torch.as_tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test, train = perm[:test_size], perm[test_size:]
    return _from_arrays("digits", x[train], y[train], x[test], y[test], [str(c) for c in range(10)])


def unpack_debian_fashion_mnist(root, source=DEBIAN_FASHION_MNIST):
    """Unpack Debian's Fashion-MNIST files into ROOT/FashionMNIST/raw/, where torchvision reads them.

    Returns True when the files are there afterwards. Debian recompressed the .gz files, so
    torchvision's own download checksums would not match; the unpacked contents are the data set.
    Safe when several processes start at once (a sweep on Ray, two notebooks): one unpacks while the
    others wait on a lock (raw/.unpack.lock), each writes its own temporary file, and a file appears
    under its real name only whole (os.replace), so no process ever reads half of one.
    """
    raw = Path(root) / "FashionMNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if all((raw / n).exists() for n in names):
        return True
    if not all((Path(source) / f"{n}.gz").exists() for n in names):
        return False
    raw.mkdir(parents=True, exist_ok=True)
    with _locked(raw / ".unpack.lock"):
        for n in names:
            if (raw / n).exists():  # unpacked by another process while this one waited
                continue
            fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{n}.", suffix=".tmp")  # this process's own
            try:
                with gzip.open(Path(source) / f"{n}.gz", "rb") as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
                os.replace(tmp, raw / n)  # atomic: the real name only ever holds a whole file
            except BaseException as e:
                Path(tmp).unlink(missing_ok=True)
                if isinstance(e, (OSError, EOFError)) and not isinstance(e, FileNotFoundError):
                    raise OSError(f"could not unpack {Path(source) / f'{n}.gz'} into {raw}: {e}") from None
                raise
    return True


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on the file `path` (fcntl.flock; released when the process dies, however)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, but the temporary files and os.replace still keep files whole
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _missing(name, root, hint):
    return FileNotFoundError(f"data set {name!r} is not in {root} and download is off. {hint}")


def load_torchvision(name, root=None, download=False):
    """Fashion-MNIST, CIFAR-10, CIFAR-100 or STL-10 through torchvision's own dataset classes."""
    from torchvision import datasets as tvd

    root = Path(root or default_root())
    if name == "fashion-mnist":
        unpack_debian_fashion_mnist(root)
        cls, split = tvd.FashionMNIST, ("train", "test")
        hint = ("Pass download=True (CLI: --download) where there is internet, or install Debian's "
                "package dataset-fashion-mnist (apt-get install dataset-fashion-mnist).")
    elif name in ("cifar10", "cifar100"):
        cls, split = (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100), ("train", "test")
        hint = "Pass download=True (CLI: --download) where there is internet."
    elif name == "stl10":
        cls, split = tvd.STL10, ("train", "test")
        hint = "Pass download=True (CLI: --download) where there is internet (2.6 GB)."
    else:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    try:
        if cls is tvd.STL10:
            train, test = (cls(str(root), split=s, download=download) for s in split)
        else:
            train, test = (cls(str(root), train=(s == "train"), download=download) for s in split)
    except RuntimeError as e:  # torchvision says "Dataset not found..." when files are missing
        if not download:
            raise _missing(name, root, hint) from e
        raise
    except OSError as e:  # the download failed: no internet, or the server did not answer
        raise ConnectionError(f"could not download data set {name!r} into {root}: {getattr(e, 'reason', e)}. "
                              f"Without internet, copy its files (torchvision's layout) into {root}, or "
                              f"point HARDBATCH_DATA at a folder that has them.") from e
    labels = lambda d: getattr(d, "targets", None) if getattr(d, "targets", None) is not None else d.labels
    classes = getattr(train, "classes", None) or [str(c) for c in range(int(max(labels(train))) + 1)]
    return _from_arrays(name, train.data, labels(train), test.data, labels(test), classes)


def load_dataset(name="digits", root=None, download=False):
    """Load any data set hardbatch knows by name; see DATASETS."""
    if name == "digits":
        return load_digits()
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    return load_torchvision(name, root, download)


class FallbackWarning(UserWarning):
    """A chapter runs on digits because Fashion-MNIST could not be had: its comparisons lose their meaning."""


CEILING = ("digits is so easy that every arm reaches 97–99 % test top-1, so the differences this chapter "
           "measures vanish at that ceiling; read its numbers as a demonstration of the code, not as a result.")


def load_fashion_mnist(root=None, fallback="digits", log=print, timeout=20):
    """Fashion-MNIST for a chapter, the best way this machine allows; `fallback` when there is none.

    1. Debian's package `dataset-fashion-mnist` (or files already under ROOT/FashionMNIST/raw/);
    2. else torchvision's own download into ROOT (about 30 MB, once), announced in one line through `log`;
    3. else, with no network, the data set `fallback` (digits), with a FallbackWarning naming the ceiling
       problem. fallback=None raises instead. `timeout` (seconds) bounds each network read.
    """
    if not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ValueError(f"timeout={timeout!r}: give the seconds each network read may wait, a positive number")
    root = Path(root or default_root())
    try:
        return load_torchvision("fashion-mnist", root)
    except FileNotFoundError:
        pass
    log(f"Fashion-MNIST: Debian's files are absent; downloading it with torchvision into {root} (30 MB, once).")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # torchvision's urlopen has none: a firewall that drops packets would hang
    try:
        return load_torchvision("fashion-mnist", root, download=True)
    except (OSError, RuntimeError) as e:  # no network: torchvision's RuntimeError, or our ConnectionError
        if fallback is None:
            raise
        reason = " ".join(str(e).split())[:200]  # torchvision's message spans lines, one per mirror
        warnings.warn(f"Fashion-MNIST could not be downloaded ({reason}); this chapter falls back to {fallback}. "
                      f"Mind the ceiling: {CEILING}", FallbackWarning, stacklevel=2)
        return load_dataset(fallback)
    finally:
        socket.setdefaulttimeout(previous)


def preprocess(x, data, image_size=0, augment=False, generator=None):
    """uint8 (B, C, H, W) -> normalised float (B, C, S, S), on x's device; optional crop + flip."""
    x = x.float().div_(255)
    if image_size and image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    mean, std = _norm(data.mean, data.std, x.device)
    x = (x - mean) / std
    if augment:
        x = random_crop_flip(x, generator)
    return x


@functools.lru_cache(maxsize=32)
def _norm(mean, std, device):
    """(1, C, 1, 1) mean and std on the device, made once: a host-to-device copy per step would sync the GPU."""
    return (torch.tensor(mean, device=device).view(1, -1, 1, 1), torch.tensor(std, device=device).view(1, -1, 1, 1))


def random_crop_flip(x, generator=None, pad=None):
    """Random translation by up to `pad` pixels (reflect padding) and a random horizontal flip, per image."""
    b, _, h, w = x.shape
    pad = pad if pad is not None else max(1, h // 8)
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    # random numbers are drawn on x's device (generator must live there too): no host-device copy per step
    dx, dy = (torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=x.device) for _ in range(2))
    rows = torch.arange(h, device=x.device).view(1, h) + dy.view(b, 1)  # (B, H)
    cols = torch.arange(w, device=x.device).view(1, w) + dx.view(b, 1)  # (B, W)
    flip = torch.rand(b, generator=generator, device=x.device) < 0.5  # (B,)
    cols = torch.where(flip.view(b, 1), cols.flip(1), cols)
    idx_b = torch.arange(b, device=x.device).view(b, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_b, rows.view(b, h, 1), cols.view(b, 1, w)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
