"""bin/train as a new user meets it: the README's commands, errors, and a quiet start.

The README's commands run exactly as written, in a fresh shell with nothing but the
documented set-up (``bin/setup``, which ``bin/test`` ran before these tests): no activated
virtualenv, no PYTHONPATH, the system PATH. Only the workdir is moved to a temporary
directory, as a user would pick their own.
"""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Placeholders of the README's synopsis lines: those lines are not commands to run.
_PLACEHOLDER = re.compile(r"\[|\.\.\.|STAGE|NAME|FILE|DIR\b|CODE|<")


def _readme_commands() -> list[str]:
    """Every concrete ``bin/train`` command of the README's ``sh`` blocks, lines joined."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("bin/train ") and not _PLACEHOLDER.search(line):
                commands.append(line)
    return commands


def _quick(command: str) -> bool:
    """The commands a test can afford: the describe stage and every tiny config (those that
    read ``../shared`` only where it is beside the checkout)."""
    if "../shared" in command and not (ROOT.parent / "shared").is_dir():
        return False
    return "--stage=describe" in command or ":tiny" in command


def _fresh_shell_env(home: Path) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def _run(command: str, tmp_path: Path, workdir: Path | None = None):
    if workdir is not None:
        command = re.sub(r"--workdir=\S+", f"--workdir={workdir}", command)
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=_fresh_shell_env(tmp_path), capture_output=True,
        text=True, timeout=900,
    )


def test_bin_train_is_executable():
    assert os.access(ROOT / "bin" / "train", os.X_OK)
    tracked = subprocess.run(
        ["git", "ls-files", "-s", "bin/train"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    if tracked:  # in a git checkout: the executable bit is committed
        assert tracked.startswith("100755"), tracked


def test_the_readme_commands_run_as_written_in_a_fresh_shell(tmp_path):
    commands = [c for c in _readme_commands() if _quick(c)]
    assert len(commands) >= 4, f"the README's quick start lost its commands: {commands}"
    workdir = tmp_path / "work"
    for command in commands:
        out = _run(command, tmp_path, workdir)
        assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        # Quiet by default: none of TensorFlow's start-up lines.
        for noise in ("cuInit", "oneDNN custom operations", "cuda drivers"):
            assert noise not in out.stderr, f"{command}: {out.stderr[-2000:]}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stage=evaluate", "--codes=/no/such/codes.txt"], "error: "),
        (["--stage=rank", "--results=/no/such.json", "--ground_truth=/no/gt.json"], "error: "),
        (["--stage=export", "--codes=1222277777000000777700000077770000000000007777000000"],
         "error: no trained supernet to export"),
    ],
)
def test_bad_inputs_are_one_error_line_and_nothing_is_written(tmp_path, args, message):
    workdir = tmp_path / "work"
    command = " ".join(
        ["bin/train", "--config=configs/fmnist.py:tiny", f"--workdir={workdir}"]
        + [shlex.quote(a) for a in args]
    )
    out = _run(command, tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith(message), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not workdir.exists()


def test_an_unwritable_workdir_is_an_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    command = (
        "bin/train --stage=describe --config=configs/fmnist.py:tiny "
        f"--workdir={blocker}/work"
    )
    out = _run(command, tmp_path)
    assert out.returncode == 1, out.stdout[-1000:]
    assert out.stderr.startswith("error: Not a directory"), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
