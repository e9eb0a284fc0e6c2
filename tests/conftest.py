"""Fixtures shared by the tests; the shared builders and checks are in helpers.py."""

import pytest

from helpers import BOX


@pytest.fixture
def box():
    return BOX
