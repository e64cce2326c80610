"""Shared fixtures: the prefecture atlas (parsed once) and brokers started per session."""

from __future__ import annotations

import pytest

from alertsim.data import load_atlas
from alertsim.domain.prefectures import Atlas


@pytest.fixture(scope="session")
def atlas() -> Atlas:
    """The 47 prefectures from package data."""
    return load_atlas()
