import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny matmuls: one thread avoids OpenMP hand-offs that dominate on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
