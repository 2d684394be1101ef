"""Every test runs once per instruction set this machine can execute (float32 kernels), but
those marked ``best_isa_only`` (slow end-to-end runs whose kernels the other tests cover), which
run on the best one."""

import pytest

from fastgru import _core


def pytest_configure(config):
    config.addinivalue_line("markers", "best_isa_only: run on the best instruction set only")


@pytest.fixture(autouse=True, params=_core.available_isas())
def isa(request):
    if request.node.get_closest_marker("best_isa_only") and request.param != _core.available_isas()[0]:
        pytest.skip("end-to-end test: runs on the best instruction set only")
    previous = _core.active_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


@pytest.fixture
def forced_threads():
    """Every region and step loop runs on the thread count set, whatever its work and the
    machine's load (fastgru itself runs small test problems on one thread); yields
    fastgru.set_num_threads and restores the defaults after."""
    import fastgru

    _core._force_threads(True)
    try:
        yield fastgru.set_num_threads
    finally:
        _core._force_threads(False)
        fastgru.set_num_threads(0)
