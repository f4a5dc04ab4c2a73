"""Claims: which sweep trains a run, so that each run is trained once, whatever races.

Two sweeps on one folder, or a Ray task retried after its worker died, may reach the same run at
once. Before training it, a sweep creates DIR/claims/NAME.claim atomically (`Claim.acquire`); a run
whose claim a live other process holds is skipped; a claim whose owner died (no heartbeat for
`CLAIM_STALE_S`, or a process of this host that has ended) is taken over, and the run resumes from
its checkpoint. sweep.run_one uses it for every engine.
"""
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

CLAIM_STALE_S = 300.0  # a claim not refreshed for this long belongs to a dead or frozen sweep: taken over
TAKEOVER_SETTLE_S = 0.5  # after renaming over a stale claim, wait this long before re-reading it


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
        """(owner, heartbeat) of the claim there now, or None. A claim still being written (or damaged)
        has owner '?' and its file's time as heartbeat."""
        try:
            text, mtime = self.path.read_text(), self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            d = json.loads(text)
            return str(d["owner"]), float(d["heartbeat"])
        except (ValueError, KeyError, TypeError):
            return "?", mtime

    def alive(self, owner, heartbeat):
        """False if a claim's owner is gone: heartbeat too old, or a process of this host that has ended."""
        if time.time() - heartbeat > self.stale_s:
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
        """True if this process now holds the claim; False if a live other does (`holder` names it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a claim released between our create and our read: try again
            try:
                self._write(exclusive=True)
                break
            except FileExistsError:
                seen = self.read()
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
        else:
            return False
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path.name}")
        self._thread.start()
        return True

    def _beat(self):
        while not self._stop.wait(self.stale_s / 4):
            seen = self.read()
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
        seen = self.read()
        if seen is not None and seen[0] == self.owner:
            self.path.unlink(missing_ok=True)
