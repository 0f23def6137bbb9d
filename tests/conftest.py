"""Test-suite policy: one intra-op thread.

The tests use small tensors, where a second thread only adds synchronisation
cost, and on a shared 2-core machine it makes small-op loops 10x slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
