"""Shared pytest setup.

- Makes the repository root importable (`import tfnas`, `import configs`) without install.
- Quiets TF's C++ logging and selects Keras's TensorFlow backend before anything imports TF.
- ``--runslow`` runs the tests marked ``@pytest.mark.slow``; they are skipped otherwise.
- Fixtures: ``repo_root``, ``shared_dir`` (``../shared`` beside the checkout), ``python_exe``
  (the interpreter running the tests, i.e. the venv's under bin/test) and ``session_workdir``
  (a factory of named temporary workdirs shared by a whole test session).
"""

import os
import sys
from pathlib import Path

# Before TF is imported anywhere (test modules import it at collection time).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

REPO_ROOT = Path(_ROOT)
SHARED_DIR = REPO_ROOT.parent / "shared"


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run the tests marked slow"
    )


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated so that the marker exists with any rootdir.
    config.addinivalue_line("markers", "slow: long tests, run with --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where bin/, configs/ and tfnas/ are)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (the search-space contract and the CVPR22 files)."""
    return SHARED_DIR


@pytest.fixture(scope="session")
def python_exe() -> str:
    """The interpreter running the tests: subprocesses use it (the venv's under bin/test)."""
    return sys.executable


@pytest.fixture(scope="session")
def session_workdir(tmp_path_factory):
    """Factory of temporary workdirs shared by the whole session: ``session_workdir("x")``.

    The same name gives the same directory, so expensive products (a trained supernet, a
    describe table) can be made once and read by several tests.
    """
    made = {}

    def make(name: str = "workdir") -> Path:
        if name not in made:
            made[name] = tmp_path_factory.mktemp(name, numbered=True)
        return made[name]

    return make
