"""avwatch keeps numpy's BLAS to one thread (see avwatch/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A matrix product big enough for OpenBLAS to use its pool, then the process's threads.
_COUNT_THREADS = (
    "import numpy, os; numpy.ones((300, 300)) @ numpy.ones((300, 300)); "
    "print(len(os.listdir('/proc/self/task')))"
)


def _threads(imports_first: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", imports_first + _COUNT_THREADS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no pool on one core")
def test_importing_avwatch_leaves_numpy_one_blas_thread() -> None:
    assert _threads("") > 1  # numpy alone: OpenBLAS's pool
    assert _threads("import avwatch; ") == 1
    assert _threads("import avwatch; ", OPENBLAS_NUM_THREADS="2") == 2  # the user's choice stays
