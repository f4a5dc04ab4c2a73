"""The chapter notebooks under pytest run in fast mode, unless you say otherwise.

nbval starts one kernel per notebook, and the kernel inherits this process's environment. So
`make test` (or plain `pytest`) runs every chapter in fast mode (HARDBATCH_SMOKE=1: smaller sizes,
the same code) whether or not CI is set. To run them at their default sizes, set HARDBATCH_SMOKE
yourself, as `make notebooks-full` does (HARDBATCH_SMOKE=0). The switch is set only around the
notebooks' own items, so the tests under tests/ see the environment as you left it.
"""
import os

import pytest

import hardbatch


def pytest_configure(config):
    try:
        hardbatch.fast_mode()  # a value it does not understand fails here, once, not in every kernel
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Fast mode for the kernel that the first cell of a notebook starts, unless HARDBATCH_SMOKE is set."""
    given = os.environ.get("HARDBATCH_SMOKE")
    if given is None:
        os.environ["HARDBATCH_SMOKE"] = "1"
    try:
        yield
    finally:
        if given is None:
            del os.environ["HARDBATCH_SMOKE"]
