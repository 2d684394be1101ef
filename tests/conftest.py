"""Every test runs once per instruction set this machine can execute (float32 kernels)."""

import pytest

from fastgru import _core


@pytest.fixture(autouse=True, params=_core.available_isas())
def isa(request):
    previous = _core.active_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)
