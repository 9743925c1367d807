"""tfnas.export: a subnet's SavedModel, reloaded in a fresh process, computes the supernet's
outputs for its arch; it stores only the subnet's weights, once; it is never overwritten by
accident; its metadata says what it is and how to feed it.

The supernet is a freshly built fmnist one whose BN parameters and statistics are random, so
that a wrong slice or missing BN statistics would change the outputs.
"""

import datetime
import hashlib
import json
import re
import subprocess
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist
from tfnas import export
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib

SPACE = ss.get_space("fmnist")
# smallest, a sampled middle one, largest: export size must grow in this order.
ARCHS = {
    "smallest": SPACE.smallest(),
    "sampled": SPACE.sample_many(1, seed=3)[0],
    "largest": SPACE.largest(),
}


def _randomize_bn(net, seed=0):
    """Non-trivial BN parameters and statistics (as tests/test_supernet.py)."""
    rng = np.random.default_rng(seed)
    for v in net.non_trainable_variables + net.trainable_variables:
        if v.path.endswith(("moving_variance", "gamma")):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        elif v.path.endswith(("moving_mean", "beta")):
            v.assign(rng.normal(0.0, 0.1, size=v.shape).astype(np.float32))


@pytest.fixture(scope="module")
def supernet():
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", name="supernet")
    net.build()
    _randomize_bn(net)
    return net


@pytest.fixture(scope="module")
def metadata():
    return {
        "preprocessing": export.preprocessing_metadata(fmnist.get_config().data),
        "source": export.source_metadata(None, seed=0),
        "metrics": {"acc": 0.5},
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory, supernet, metadata):
    """{name: export dir} of ARCHS, and the supernet's logits for fixed images."""
    root = tmp_path_factory.mktemp("exports")
    images = np.random.default_rng(1).normal(size=(8, 28, 28, 1)).astype(np.float32)
    np.save(root / "images.npy", images)
    dirs, expected = {}, {}
    for name, arch in ARCHS.items():
        dirs[name] = export.export_subnet(supernet, arch, root / name, metadata=metadata)
        expected[name] = supernet(images, arch=arch.digits(), training=False).numpy()
    return root, dirs, expected


# Runs in a fresh interpreter: only TensorFlow and NumPy, no tfnas, no Keras model code.
_RELOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    root = sys.argv[1]
    images = tf.constant(np.load(root + "/images.npy"))
    report = {}
    for name in sys.argv[2:]:
        fn = tf.saved_model.load(root + "/" + name).signatures["serving_default"]
        out = fn(images=images)
        np.save(f"{root}/{name}.logits.npy", out["logits"].numpy())
        np.save(f"{root}/{name}.probabilities.npy", out["probabilities"].numpy())
        spec = fn.structured_input_signature[1]["images"]
        report[name] = {"input": [spec.shape.as_list(), spec.dtype.name],
                        "outputs": sorted(fn.structured_outputs)}
    report["tfnas_imported"] = any(m.startswith("tfnas") for m in sys.modules)
    print(json.dumps(report))
    """
)


def test_reloaded_in_a_fresh_process_it_computes_the_supernet_outputs(exported, python_exe):
    root, dirs, expected = exported
    result = subprocess.run(
        [python_exe, "-c", _RELOAD, str(root), *dirs],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.pop("tfnas_imported") is False
    for name in dirs:
        assert report[name] == {
            "input": [[None, 28, 28, 1], "float32"],
            "outputs": ["logits", "probabilities"],
        }
        logits = np.load(root / f"{name}.logits.npy")
        probabilities = np.load(root / f"{name}.probabilities.npy")
        ref = expected[name]
        # Not bit-exact: the loaded graph is optimised by Grappler (conv + BN fusion) and may
        # run other oneDNN kernels than the supernet's eager sliced ops; float32 round-off is
        # ~1e-7 relative per layer (../shared/TF_NOTES.md). 1e-5 of the logits' scale leaves
        # room for ~50 layers of it, while a wrong weight slice or BN statistic moves the
        # logits by O(1) relative.
        scale = np.abs(ref).max()
        np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5 * scale, err_msg=name)
        np.testing.assert_allclose(
            probabilities, tf.nn.softmax(ref).numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )


def test_export_holds_only_the_subnet_weights_once(exported, supernet):
    _, dirs, _ = exported
    sizes = {name: export.directory_size(d) for name, d in dirs.items()}
    assert sizes["smallest"] < sizes["sampled"] < sizes["largest"]
    supernet_bytes = sum(np.asarray(v).nbytes for v in supernet.weights)
    # The fmnist supernet (one weight copy) holds exactly the largest subnet's weights, so
    # only smaller subnets can have a smaller export (the graph adds ~0.8 MB to the largest).
    assert sizes["smallest"] < supernet_bytes
    assert sizes["sampled"] < supernet_bytes
    for name, d in dirs.items():
        variables = export.directory_size(d / "variables")
        weights = 4 * SPACE.params(ARCHS[name])  # float32; params count BN statistics too
        # Stored once (keras.Model.export would store them twice: > 2x).
        assert weights <= variables <= 1.1 * weights + 16384, (name, variables, weights)


def test_existing_export_is_kept_without_overwrite_and_replaced_with_it(
    tmp_path, supernet, metadata
):
    target = tmp_path / "runs" / "smallest"
    arch = ARCHS["smallest"]
    export.export_subnet(supernet, arch, target, metadata=metadata)
    marker = target / "marker"
    marker.write_text("old export")
    message = (
        f"export directory {target} already exists; pass --overwrite (or "
        "--config.export.overwrite=True; overwrite=True in Python) to replace it"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        export.export_subnet(supernet, arch, target, metadata=metadata)
    assert marker.read_text() == "old export"

    path = export.export_subnet(supernet, arch, target, metadata=metadata, overwrite=True)
    assert path == target and not marker.exists()
    assert (target / "saved_model.pb").is_file()
    assert export.read_metadata(target)["code"] == arch.code
    # Written under a temporary name and renamed: nothing is left beside it.
    assert sorted(p.name for p in target.parent.iterdir()) == ["smallest"]


def test_metadata_fields(exported):
    _, dirs, _ = exported
    arch = ARCHS["sampled"]
    meta = export.read_metadata(dirs["sampled"])
    assert meta["code"] == arch.code and meta["space"] == "fmnist"
    assert meta["flops"] == SPACE.flops(arch) and meta["params"] == SPACE.params(arch)
    assert meta["depths"] == list(arch.depths)
    assert meta["input_shape"] == [28, 28, 1] and meta["num_classes"] == 10
    prep = meta["preprocessing"]
    assert prep["mean"] == [0.28604] and prep["std"] == [0.35302]
    assert prep["image_size"] == 28 and prep["dataset"] == "fashion_mnist"
    assert "(x / 255 - mean) / std" in prep["formula"]
    assert meta["signature"]["key"] == "serving_default"
    assert meta["signature"]["inputs"]["images"]["shape"] == [None, 28, 28, 1]
    assert set(meta["signature"]["outputs"]) == {"logits", "probabilities"}
    assert meta["source"] == {
        "checkpoint": None,
        "sha256": None,
        "description": "freshly initialized (seed 0), untrained",
    }
    assert meta["metrics"] == {"acc": 0.5}
    assert meta["supernet"]["routing"] == "shared"
    assert meta["weight_copies"] == dict.fromkeys(
        ("stem", "stage1", "stage2", "stage3", "stage4", "classifier"), 0
    )
    assert meta["tfnas_version"] and meta["tensorflow_version"] == tf.__version__
    created = datetime.datetime.fromisoformat(meta["created"])
    assert abs(datetime.datetime.now(datetime.UTC) - created).total_seconds() < 3600


def test_metadata_names_the_few_shot_group_of_each_location(tmp_path, metadata):
    # G = 3, stage_width_nested: per location the widest distinct channel value owns copy 0,
    # the second widest copy 1, every narrower one copy 2; the stem is not split and the
    # classifier follows stage 4. By hand from the fmnist width table: stage 1 out digit 1
    # (8 of 8/7/6) -> 0; stage 2 digit 2 (15 of 16/15/14/...) -> 1; stage 3 digit 7 (22,
    # the 7th value) -> 2; stage 4 digit 2 (61 of 64/61/...) -> 1.
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", num_copies=3, routing="stage_width_nested")
    net.build()
    largest = SPACE.largest()
    arch = ss.Arch(1, largest.depths, 1, largest.mids, (1, 2, 7, 2))
    meta = export.read_metadata(
        export.export_subnet(net, arch, tmp_path / "g3", metadata=metadata)
    )
    assert meta["supernet"]["routing"] == "stage_width_nested"
    assert meta["supernet"]["num_copies"] == 3
    assert meta["weight_copies"] == {
        "stem": 0, "stage1": 0, "stage2": 1, "stage3": 2, "stage4": 1, "classifier": 1
    }


def test_checkpoint_source_records_its_sha256(tmp_path):
    path = tmp_path / "supernet.keras"
    path.write_bytes(b"not really a supernet")
    source = export.source_metadata(path)
    assert source["checkpoint"] == str(path.resolve())
    assert source["sha256"] == hashlib.sha256(b"not really a supernet").hexdigest()


def test_metadata_without_preprocessing_is_refused(tmp_path, supernet):
    with pytest.raises(ValueError, match=r"no 'preprocessing' entry with 'mean' and 'std'"):
        export.export_subnet(supernet, ARCHS["smallest"], tmp_path / "x", metadata={})
    assert not (tmp_path / "x").exists()


def test_an_sse_supernet_exports_each_arch_from_its_bucket(tmp_path, metadata):
    """Seed paper 001 §2.3: an arch is evaluated and exported with the sub-supernet of its
    (d3, d4) bucket (``depth34_table``, whole copies with ``split_stem``); every copy holds
    other weights here, so only the right copy reproduces the supernet's logits."""
    from tfnas import static

    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", num_copies=5, routing="depth34_table",
                                split_stem=True)
    net.build()
    rng = np.random.default_rng(3)
    for v in net.trainable_variables:
        v.assign(v.numpy() + rng.normal(0.0, 0.05, size=v.shape).astype(np.float32))
    _randomize_bn(net, seed=3)
    images = np.random.default_rng(1).normal(size=(4, 28, 28, 1)).astype(np.float32)
    # (d3, d4) -> bucket, SCHEMES.md §3.1 step 8 (tests/test_supernet.py has the whole table).
    wanted = {(8, 5): 2, (2, 2): 0, (5, 2): 1, (4, 5): 3, (5, 3): 4}
    archs = {}
    for arch in SPACE.sample_many(3000, 0):
        pair = (arch.depths[2], arch.depths[3])
        if pair in wanted and wanted[pair] not in archs:
            archs[wanted[pair]] = arch
    assert sorted(archs) == [0, 1, 2, 3, 4]
    for bucket, arch in archs.items():
        meta = export.read_metadata(
            export.export_subnet(net, arch, tmp_path / str(bucket), metadata=metadata)
        )
        assert set(meta["weight_copies"].values()) == {bucket}, meta["weight_copies"]
        model = static.extract_subnet(net, arch)
        want = net(images, arch=arch.digits(), training=False).numpy()
        got = model(images, training=False).numpy()
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 1e-5 * scale, bucket
