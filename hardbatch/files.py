"""Files hardbatch writes and reads, made safe: written atomically, and only ever regular files.

Why a module of its own: records, checkpoints, claims, reports and the command line's output checks all
write or read files, and every one must survive a kill (a whole file or none, never half of one) and must
never replace a device or block on a named pipe given by mistake. Each rule lives here once.
"""
import os
import stat
import tempfile
from pathlib import Path


def file_kind(mode):
    """What a stat mode is, in words (for messages)."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))
    return next((word for test, word in kinds if test(mode)), "a special file")


def special_kind(path):
    """None if `path` is a regular file or does not exist; else what it is, in words ("a named pipe")."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing (fine), or a path the OS refuses: the real operation will say
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


def check_not_special(path):
    """ValueError if `path` exists and is not a regular file: hardbatch reads and replaces regular files only
    (replacing a device would destroy it; opening a named pipe would wait forever)."""
    kind = special_kind(path)
    if kind:
        raise ValueError(f"{path} is {kind}, not a regular file")


def atomic_write(path, data):
    """Write bytes or str to `path` through a temporary file in the same folder and os.replace.

    Refuses (ValueError) a path that exists and is not a regular file; an OSError (a full disk, no
    permission) names `path`."""
    path = Path(path)
    check_not_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        check_not_special(path)  # it may have appeared while we wrote
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # e.g. [Errno 28] without a file name
            raise OSError(e.errno, f"{e.strerror or e} (writing {path})", str(path)) from e
        raise


def open_regular(path):
    """`path` opened for binary reading if it is a regular file; ValueError naming it if it is not.

    A special file is never read (a named pipe would block): checked before opening, and again on the
    open file, which is opened non-blocking in case it was swapped in between. OSError if it cannot
    be opened."""
    check_not_special(path)
    f = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
    mode = os.fstat(f.fileno()).st_mode
    if not stat.S_ISREG(mode):
        f.close()
        raise ValueError(f"{path} is {file_kind(mode)}, not a regular file")
    return f


def read_bytes(path, limit, what="file"):
    """The bytes of a regular file of at most `limit` bytes; ValueError "PATH: why" otherwise."""
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"{path}: not a readable {what} ({e.strerror or e})") from None
    except ValueError as e:  # a special file, or a NUL byte in the name
        raise ValueError(f"{path}: not a readable {what} ({str(e).replace(str(path), 'it')})") from None
    if len(data) > limit:
        raise ValueError(f"{path}: larger than {limit // 2**20} MB, not a {what}")
    return data
