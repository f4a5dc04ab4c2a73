"""Claims: which sweep trains a run, so that each run is trained once, whatever races.

Two sweeps on one folder, or a Ray task retried after its worker died, may reach the same run at
once. Before training it, a sweep creates DIR/claims/NAME.claim atomically (`Claim.acquire`); a run
whose claim a live other process holds is skipped; a claim whose owner died (no heartbeat for
`CLAIM_STALE_S`, or a process of this host that has ended) is taken over, and the run resumes from
its checkpoint. runner.run_one uses it for every engine.

A claim is checked like any other file hardbatch reads: one that is a link or a special file (a named
pipe would block a read for ever) is never read nor replaced but reported unusable (`UnusableClaim`), and
a heartbeat that is not a finite time, or lies in the future, tells nothing about its owner: such a claim
is judged by its file's time, and taken over when that is stale or in the future too.
"""
import json
import math
import os
import socket
import stat
import threading
import time
import uuid
from pathlib import Path

from .files import file_kind

CLAIM_STALE_S = 300.0  # a claim not refreshed for this long belongs to a dead or frozen sweep: taken over
TAKEOVER_SETTLE_S = 0.5  # after renaming over a stale claim, wait this long before re-reading it
CLOCK_SKEW_S = 60.0  # a heartbeat further in the future than this was not written by a clock in sync
MAX_CLAIM_BYTES = 4096  # a claim is a line of JSON; a larger file is not one


class UnusableClaim(ValueError):
    """A claim path that is not a claim file (a link, a named pipe, a folder, ...): the run cannot be claimed
    until someone removes it; the message says what it is."""


class ClaimLost(RuntimeError):
    """Another sweep took this run's claim over (ours went stale): this process stops training it."""


class Claim:
    """DIR/claims/NAME.claim: which process trains a run, and when it was last seen alive.

    Created with O_CREAT|O_EXCL, so of two sweeps reaching a run at once exactly one gets it. It holds
    {"owner": "host:pid:token", "heartbeat": time}; a thread refreshes the heartbeat every `stale_s / 4`
    seconds while the run trains (an epoch of a big model can outlast the stale limit, so not only at
    epochs). A claim is taken over when its heartbeat is older than `stale_s` or its owner is a process
    of this host that no longer exists (a killed worker's retry need not wait): rename ours over it, wait,
    re-read, and keep it only if ours is still there. Heartbeats compare clocks: keep nodes' clocks in sync."""

    def __init__(self, path, stale_s=CLAIM_STALE_S):
        self.path, self.stale_s = Path(path), float(stale_s)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holder, self.took_over, self.lost = None, None, False
        self._stop, self._thread = threading.Event(), None

    def _write(self, exclusive):
        data = json.dumps({"owner": self.owner, "heartbeat": time.time()}).encode()
        if exclusive:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        else:  # whole or not at all: write aside, rename over
            tmp = self.path.with_name(f".{self.path.name}.{self.owner.split(':', 1)[1].replace(':', '-')}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)

    def read(self):
        """(owner, heartbeat) of the claim there now, or None. A claim still being written (or damaged) has
        owner '?'; a heartbeat that is not a finite time, or lies more than CLOCK_SKEW_S in the future, is
        replaced by the file's time. UnusableClaim if the path is a link or not a regular file."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            self._unusable(st)
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):  # swapped in since the lstat
                    self._unusable(st)
                text = f.read(MAX_CLAIM_BYTES + 1)
        except FileNotFoundError:  # released meanwhile
            return None
        except OSError as e:  # e.g. ELOOP: it became a link
            raise UnusableClaim(f"claim {self.path} cannot be read ({e.strerror or e}); remove it to let a "
                                f"sweep train this run") from None
        owner, heartbeat = "?", math.nan
        try:
            d = json.loads(text)
            owner = str(d["owner"])
            heartbeat = float(d["heartbeat"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            pass
        if not math.isfinite(heartbeat) or heartbeat > time.time() + CLOCK_SKEW_S:
            heartbeat = st.st_mtime  # the time it was last written: judged by that instead
        return owner, heartbeat

    def _unusable(self, st):
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(self.path)
            what = f"a symbolic link to {target!r}" + ("" if os.path.exists(self.path) else ", which does not exist")
        else:
            what = file_kind(st.st_mode)
        raise UnusableClaim(f"claim {self.path} is {what}, not a claim file: remove it to let a sweep train "
                            f"this run")

    def alive(self, owner, heartbeat):
        """False if a claim's owner is gone: heartbeat too old (or in the future: not a clock in sync),
        or a process of this host that has ended."""
        age = time.time() - heartbeat
        if not math.isfinite(age) or age > self.stale_s or age < -CLOCK_SKEW_S:
            return False
        host, _, pid = owner.partition(":")
        pid = pid.split(":")[0]
        if host == socket.gethostname() and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return False
            except PermissionError:  # exists, another user's
                pass
            try:  # killed but not yet reaped by its parent (a zombie) is gone too
                if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                    return False
            except OSError:
                pass
        return True

    def acquire(self):
        """True if this process now holds the claim; False if a live other does (`holder` names it).
        UnusableClaim if the claim path is a link or a special file (never read, never replaced)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a claim released between our create and our read: try again
            try:
                self._write(exclusive=True)
                break
            except FileExistsError:
                seen = self.read()  # UnusableClaim for a link or a special file
                if seen is None:
                    continue
                if self.alive(*seen):
                    self.holder = seen[0]
                    return False
                self._write(exclusive=False)  # take it over...
                time.sleep(TAKEOVER_SETTLE_S)  # ...let a rival taker's rename land...
                now = self.read()
                if now is None or now[0] != self.owner:  # ...and keep it only if ours is still there
                    self.holder = now[0] if now else "?"
                    return False
                self.took_over = seen[0]
                break
        else:  # created and released three times while we looked: a busy rival, alive
            self.holder = "another sweep (its claim came and went)"
            return False
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path.name}")
        self._thread.start()
        return True

    def _beat(self):
        while not self._stop.wait(self.stale_s / 4):
            try:
                seen = self.read()
            except UnusableClaim:
                seen = None
            if seen is None or seen[0] != self.owner:
                self.lost = True
                return
            self._write(exclusive=False)

    def check(self, entry=None):
        """train()'s on_epoch hook: stop training a run whose claim another sweep took over."""
        if self.lost:
            raise ClaimLost(f"{self.path.name} was taken over by another sweep")

    def release(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            seen = self.read()
        except UnusableClaim:  # not ours any more: leave it alone
            return
        if seen is not None and seen[0] == self.owner:
            self.path.unlink(missing_ok=True)
