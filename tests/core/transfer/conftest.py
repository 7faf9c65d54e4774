"""The loop's tests use tiny models: one intra-op thread is faster for them, and keeps them
fast when other processes share the CPU (OpenMP threads spin badly under contention)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
