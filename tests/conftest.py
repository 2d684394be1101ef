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
