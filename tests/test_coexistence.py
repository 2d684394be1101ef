"""PyTorch and fastgru in one process, imported in either order: each bundles an OpenMP runtime
(the wheel's libgomp is renamed by auditwheel), and both must run side by side with 2 threads,
in parallel regions of their own and from two Python threads at once, giving the same numbers."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

SCRIPT = textwrap.dedent(
    """
    import threading
    {imports}
    import numpy as np

    torch.set_num_threads(2)
    fastgru.set_num_threads(2)
    torch.manual_seed(0)
    module = torch.nn.GRU(16, 32, num_layers=2)
    layer = fastgru.GRU.from_torch(module)
    x = np.random.default_rng(0).standard_normal((40, 8, 16)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    results = {{}}

    def run_torch():
        with torch.no_grad():
            for _ in range(20):
                results["torch"] = module(torch.from_numpy(x))[0].numpy()

    def run_fastgru():
        for _ in range(20):
            results["fastgru"] = layer(x)[0]

    workers = [threading.Thread(target=run_torch), threading.Thread(target=run_fastgru)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    np.testing.assert_array_equal(results["torch"], expected)
    np.testing.assert_allclose(results["fastgru"], expected, rtol=0, atol=1e-5)
    print("openmp:", fastgru.info()["openmp"], "threads:", fastgru.get_num_threads(), torch.get_num_threads())
    """
)


@pytest.fixture
def isa():
    """Overrides conftest's per-ISA runs: the subprocesses use the default instruction set."""


@pytest.mark.parametrize("imports", ["import torch\nimport fastgru", "import fastgru\nimport torch"],
                         ids=["torch-first", "fastgru-first"])
def test_torch_and_fastgru_run_side_by_side(imports):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(imports=imports)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "threads: 2 2" in out.stdout
