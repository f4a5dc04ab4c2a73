"""`hardbatch` and `python -m hardbatch`: the command line, with Ctrl-C and SIGTERM handled from the first
instant. Loading torch takes seconds; a signal during it ends the command with one line, not a traceback
(hardbatch/cli.py handles them once it is loaded)."""
import os
import signal
import sys


def _starting(signum, frame):
    os.write(2, f"hardbatch: {signal.Signals(signum).name} while starting; nothing was done\n".encode())
    os._exit(128 + signum)


def main():
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _starting)
    from .cli import main as cli_main  # cli.main puts its own handlers in first thing

    try:
        return cli_main()
    finally:  # the command is over: ignore signals while Python exits (it resets Python-level handlers then)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
