"""Ctrl-C and SIGTERM: a command stops with one line that says how to continue, never a traceback.

Why: runs and sweeps are long, and people stop them. The first Ctrl-C (SIGINT) or SIGTERM becomes a clean
stop (KeyboardInterrupt, or `Terminated` for SIGTERM, exit 130 or 143), which the command line turns into one
line; a second one while stopping leaves at once. __main__.py covers the seconds before this module loads.
"""
import contextlib
import os
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same clean stop as Ctrl-C (KeyboardInterrupt), with its own exit status."""
    signum = signal.SIGTERM


stopping = []  # the signals being handled; "said" once the stop's one line is printed; "program" (see cli.main)


def on_signal(signum, frame):
    """Ctrl-C (SIGINT) or SIGTERM: the first stops the command cleanly (KeyboardInterrupt, Terminated). In the
    program, one more while it stops (Ctrl-C pressed twice) leaves at once, with the one line if it is not
    printed yet; called in-process (a notebook), it is a KeyboardInterrupt again."""
    if any(isinstance(s, int) for s in stopping) and "program" in stopping:
        if "said" not in stopping:
            os.write(2, f"hardbatch: {signal.Signals(signum).name} again while stopping; stopped at once\n".encode())
        os._exit(128 + signum)
    stopping.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install(program):
    """Ctrl-C and SIGTERM handlers for this command; returns the previous ones, to put back."""
    stopping[:] = ["program"] if program else []
    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}




@contextlib.contextmanager
def held(signums=(signal.SIGINT, signal.SIGTERM)):
    """Hold these signals back while the block runs (they are delivered when it ends), so that a handler never
    runs half-way through it: the stop's one line is written and marked "said" together. Where the platform
    cannot hold signals (Windows), the block just runs."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def restore(previous):
    """Put back the handlers `install` replaced. After a stop on a signal in the program, ignore more signals
    instead, while Python exits; called in-process (tests, a notebook), leave them as they were."""
    for sig, handler in previous.items():
        if "program" in stopping and "said" in stopping:
            signal.signal(sig, signal.SIG_IGN)
        else:
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
