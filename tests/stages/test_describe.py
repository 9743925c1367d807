"""Stage ``describe``, in-process and through ``bin/train`` (a few subprocesses, ~6 s each)."""

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from configs import fmnist
from configs import imagenet
from tfnas import search_space as ss
from tfnas.stages import describe
from tfnas.stages import registry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = "1252233313000000223212122253130000000000006515000000"  # docs/SEARCH_SPACE.md
# Block 1 of stage 1 has out digit 4 (position 7), block 2 has 3: not a code.
BAD = "1252233413000000223212122253130000000000006515000000"


def _train(python, *args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [python, str(REPO / "bin" / "train"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", sorted(ss.SPACES))
def test_bounds_are_those_of_the_smallest_and_largest_archs(name):
    space = ss.get_space(name)
    summary = describe.space_summary(space)
    assert summary["size"] == space.size()
    assert summary["largest"] == space.largest().code
    assert summary["smallest"] == space.smallest().code
    archs = space.sample_many(300, seed=1)
    # Mutations of the extremes are the archs closest to them: they must stay inside too.
    rng = np.random.default_rng(2)
    archs += [space.mutate(space.largest(), rng, prob=0.05) for _ in range(50)]
    archs += [space.mutate(space.smallest(), rng, prob=0.05) for _ in range(50)]
    for arch in archs:
        flops, params = space.flops(arch), space.params(arch)
        assert summary["flops_min"] <= flops <= summary["flops_max"], arch.code
        assert summary["params_min"] <= params <= summary["params_max"], arch.code
    assert summary["flops_min"] < summary["flops_max"]


def test_describe_codes_rows_and_products(tmp_path, capsys):
    space = ss.get_space("fmnist")
    codes = [space.largest().code, space.smallest().code, EXAMPLE]
    args = registry.StageArgs(workdir=str(tmp_path), codes=",".join(codes))
    assert describe.run(fmnist.get_config(), args) == 0

    out = capsys.readouterr().out
    assert "search space 'fmnist'" in out and f"{space.size():,} archs" in out
    report = json.loads((tmp_path / "describe" / "describe.json").read_text())
    assert report["num_codes"] == 3
    rows = report["rows"]
    assert [r["code"] for r in rows] == codes
    assert [r["key"] for r in rows] == ["arch1", "arch2", "arch3"]
    assert rows[2]["depths"] == [2, 5, 2, 2]
    for row in rows:
        arch = space.parse(row["code"])
        assert row["flops"] == space.flops(arch) and row["params"] == space.params(arch)
        # The printed table shows FLOPs and params in millions.
        assert f"{row['flops'] / 1e6:.3f}" in out and f"{row['params'] / 1e6:.3f}" in out
    tsv = (tmp_path / "describe" / "describe.tsv").read_text().splitlines()
    assert tsv[0] == "key\tcode\tdepths\tflops\tparams" and len(tsv) == 4
    assert registry.read_manifest(tmp_path, "describe") == {
        "report": str(tmp_path / "describe" / "describe.json"),
        "table": str(tmp_path / "describe" / "describe.tsv"),
    }


def test_describe_rejects_the_first_invalid_code_with_the_parsers_message(tmp_path):
    space = ss.get_space("fmnist")
    with pytest.raises(ValueError) as expected:
        space.parse(BAD)
    args = registry.StageArgs(workdir=str(tmp_path), codes=f"{EXAMPLE},{BAD},0000")
    with pytest.raises(ValueError) as info:
        describe.run(fmnist.get_config(), args)
    assert str(info.value) == f"--codes: arch2: {expected.value}"


def test_bin_train_describe_with_overrides(python_exe, tmp_path):
    space = ss.get_space("fmnist")
    codes = f"{space.largest().code},{EXAMPLE}"
    proc = _train(
        python_exe,
        "--stage=describe",
        "--config=configs/fmnist.py:tiny",
        "--config.train.batch_size=24",
        f"--workdir={tmp_path}",
        f"--codes={codes}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "search space 'fmnist'" in proc.stdout
    assert EXAMPLE in proc.stdout and "FLOPs (M)" in proc.stdout
    config = json.loads((tmp_path / "describe" / "config.json").read_text())
    assert config["name"] == "fmnist_tiny" and config["train"]["batch_size"] == 24
    assert (tmp_path / "describe" / "manifest.json").exists()


def test_bin_train_invalid_code_exits_with_the_precise_message(python_exe, tmp_path):
    with pytest.raises(ValueError) as expected:
        ss.get_space("imagenet").parse(BAD)
    proc = _train(
        python_exe,
        "--stage=describe",
        "--config=configs/imagenet.py",
        f"--workdir={tmp_path}",
        f"--codes={EXAMPLE},{BAD}",
    )
    assert proc.returncode == 1
    assert f"error: --codes: arch2: {expected.value}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bin_train_unknown_stage_lists_the_valid_ones(python_exe, tmp_path):
    proc = _train(
        python_exe, "--stage=trian", "--config=configs/fmnist.py", f"--workdir={tmp_path}"
    )
    assert proc.returncode != 0
    assert "trian" in proc.stderr
    for name in registry.stage_names():
        assert name in proc.stderr
    assert not (tmp_path / "trian").exists()


def test_describe_the_competition_excerpt(competition_excerpt, tmp_path, capsys):
    args = registry.StageArgs(workdir=str(tmp_path), codes=str(competition_excerpt))
    assert describe.run(imagenet.get_config(), args) == 0
    assert "500 codes (500 unique)" in capsys.readouterr().out
    report = json.loads((tmp_path / "describe" / "describe.json").read_text())
    assert report["num_codes"] == 500
    first = report["rows"][0]
    assert first["key"] == "arch1" and first["code"] == EXAMPLE and first["depths"] == [2, 5, 2, 2]
    space = ss.get_space("imagenet")
    assert first["flops"] == space.flops(EXAMPLE) and first["params"] == space.params(EXAMPLE)
    lo, hi = report["flops_range"]
    assert report["space"]["flops_min"] <= lo <= hi <= report["space"]["flops_max"]


def test_bin_train_describes_the_45k_competition_codes(python_exe, tmp_path, competition_full):
    start = time.perf_counter()
    proc = _train(
        python_exe,
        "--stage=describe",
        "--config=configs/imagenet.py",
        f"--workdir={tmp_path}",
        f"--codes={competition_full}",
    )
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "45,000 codes (45,000 unique)" in proc.stdout
    report = json.loads((tmp_path / "describe" / "describe.json").read_text())
    assert report["num_codes"] == 45000
    first = report["rows"][0]
    assert first["key"] == "arch1" and first["code"] == EXAMPLE
    space = ss.get_space("imagenet")
    assert first["flops"] == space.flops(EXAMPLE) and first["params"] == space.params(EXAMPLE)
    lo, hi = report["flops_range"]
    assert report["space"]["flops_min"] <= lo <= hi <= report["space"]["flops_max"]
    # "A few seconds" for the stage itself; the process also imports TF. Generous bound.
    assert wall < 120, f"describe of 45k codes took {wall:.0f} s"
