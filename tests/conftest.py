"""Shared pytest setup.

- Makes the repository root importable (`import tfnas`, `import configs`) without install.
- Quiets TF's C++ logging and selects Keras's TensorFlow backend before anything imports TF.
- ``--runslow`` runs the tests marked ``@pytest.mark.slow``; they are skipped otherwise.
- Fixtures: ``repo_root``, ``shared_dir`` (``../shared`` beside the checkout), ``python_exe``
  (the interpreter running the tests, i.e. the venv's under bin/test) and ``session_workdir``
  (a factory of named temporary workdirs shared by a whole test session), ``kill_at_checkpoint``
  (runs a ``bin/train`` command and SIGKILLs it at its first checkpoint).
- CVPR 2022 files: ``competition_excerpt`` and ``gt30_file`` are vendored in
  ``tests/data/cvpr22/`` (see its README) and always there; ``competition_full`` and
  ``gt30_full`` are the originals in ``../shared/data/cvpr22/`` and skip the test when absent.
"""

import json
import os
import signal
import subprocess
import sys
import time
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

# The CVPR 2022 Track 1 files: excerpts vendored in the repository, and the full originals,
# which exist only where ../shared is laid beside the checkout.
DATA_DIR = REPO_ROOT / "tests" / "data"
COMPETITION_EXCERPT = DATA_DIR / "cvpr22" / "CVPR_2022_NAS_Track1_test_500.json"
GT30 = DATA_DIR / "cvpr22" / "gt_arch30_imagenet2500.json"
COMPETITION_FULL = SHARED_DIR / "data" / "cvpr22" / "CVPR_2022_NAS_Track1_test.json"
GT30_FULL = SHARED_DIR / "data" / "cvpr22" / "gt_arch30_imagenet2500.json"


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


@pytest.fixture(scope="session")
def kill_at_checkpoint():
    """``kill_at_checkpoint(command, state, env)``: a crash after the first checkpoint.

    Starts ``command`` (a ``bin/train`` training stage), waits until its checkpoint state file
    ``state`` exists, SIGKILLs it and returns the epochs that checkpoint recorded. Fails the
    test if no checkpoint is written (within ``timeout`` seconds) or the run ended first.
    """

    def kill(command, state: Path, env=None, timeout: float = 600) -> int:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout
            while not state.exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert state.exists(), f"no checkpoint was written ({state})"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        return json.loads(state.read_text())["epochs"]

    return kill


def _full_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"{path} not present: the full CVPR 2022 file lives in ../shared beside the "
            "checkout; the same checks run on the excerpt in tests/data/cvpr22/"
        )
    return path


@pytest.fixture(scope="session")
def competition_excerpt() -> Path:
    """500 of the 45,000 competition codes (``arch1``..``arch30`` first), in the original format."""
    return COMPETITION_EXCERPT


@pytest.fixture(scope="session")
def gt30_file() -> Path:
    """The 30-arch ImageNet ground truth (vendored copy of the whole file)."""
    return GT30


@pytest.fixture(scope="session")
def competition_full() -> Path:
    """``../shared/data/cvpr22/CVPR_2022_NAS_Track1_test.json``; skips the test when absent."""
    return _full_file(COMPETITION_FULL)


@pytest.fixture(scope="session")
def gt30_full() -> Path:
    """``../shared/data/cvpr22/gt_arch30_imagenet2500.json``; skips the test when absent."""
    return _full_file(GT30_FULL)
