"""Fixtures shared by the tests; the shared builders and checks are in helpers.py."""

import _thread
import signal

import pytest

from helpers import BOX


@pytest.fixture
def box():
    return BOX


@pytest.fixture
def ctrl_c():
    """A function that presses Ctrl-C (SIGINT in the main thread) as in an interactive session:
    Python's own SIGINT handler is in place meanwhile (a job a shell starts in the background has
    SIGINT ignored, and then ``_thread.interrupt_main`` does nothing)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield _thread.interrupt_main
    signal.signal(signal.SIGINT, previous)
