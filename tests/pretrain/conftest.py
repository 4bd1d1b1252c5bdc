import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tests use small tensors: one thread is fastest, and on a busy machine two threads
    can be many times slower (each op waits for the other, descheduled, thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
