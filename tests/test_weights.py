"""Weights in (harness/models/weights.py): checkpoints of the official DSANet code reproduce the official model's
logits, mmaction2 checkpoints load where the architecture is ours, our own run checkpoints, `eval --checkpoint`,
and the ImageNet initialisation (`dsa-harness weights imagenet`, 2-D -> 3-D inflation).

Every weights file here is a real state dict written with torch.save: the official ones by the rule of
tests/data/official_checkpoint/README.md from the official key list, the mmaction2 ones by mmaction2's own naming
(its ResNet3d maps ``conv{n}.conv`` <-> ``conv{n}``, ``conv{n}.bn`` <-> ``bn{n}``, ``downsample.conv`` /
``downsample.bn`` <-> ``downsample.0`` / ``.1`` when it inflates torchvision weights; ResNetTSM wraps each
shifted block's ``conv1.conv`` as ``conv1.conv.net``; heads hold ``fc_cls``), written out below key by key."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from harness.cli import main
from harness.config import RunConfig
from harness.models import create_model, load_checkpoint_into, read_weights
from harness.models.weights import WeightLoadError
from harness.results.rundir import RunDir

OFFICIAL = Path(__file__).resolve().parent / "data" / "official_checkpoint"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "paper" / "official_checkpoint"


def test_vendored_official_reference_equals_the_shared_one():
    if not SHARED.exists():
        pytest.skip(f"no shared/ beside the repository ({SHARED}): only the vendored copy is tested")
    for name in ("README.md", "keys.json", "expected_logits.npz"):
        assert (OFFICIAL / name).read_bytes() == (SHARED / name).read_bytes(), name


def ruled_tensor(key: str, shape) -> torch.Tensor:
    """The value of ``key`` by the rule of tests/data/official_checkpoint/README.md."""
    if key.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    shape = tuple(shape)
    if key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
        value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith(("running_mean", ".bias")):
        value = rng.normal(0, 0.1, shape)
    else:
        value = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
    return torch.from_numpy(np.asarray(value, dtype=np.float32))


def ruled_state(layout: dict) -> dict:
    """{key: shape} -> a state dict of tensors made by the rule."""
    return {k: ruled_tensor(k, shape) for k, shape in layout.items()}


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """The official state dicts of i3d_r50 and i3d_r50_dsa (400 classes), saved with torch.save."""
    keys = json.loads((OFFICIAL / "keys.json").read_text())
    root = tmp_path_factory.mktemp("official")
    files = {}
    for variant, layout in keys.items():
        files[variant] = root / f"{variant}.pth"
        torch.save(ruled_state(layout), files[variant])
    return files


def official_input() -> torch.Tensor:
    """The README's input, (N*U, C, T, H, W) = (8, 3, 8, 64, 64), in our layout (N, U, C, T, H, W)."""
    x = np.random.default_rng(2021).standard_normal((8, 3, 8, 64, 64)).astype(np.float32)
    return torch.from_numpy(x).reshape(2, 4, 3, 8, 64, 64)


@pytest.mark.parametrize("variant", ["i3d_r50", "i3d_r50_dsa"])
def test_official_dsanet_checkpoint_reproduces_the_official_logits(official_files, variant):
    model = create_model(variant, num_classes=400).eval()  # the released config: U 4, split 1/8, alpha 2, K 3
    summary = load_checkpoint_into(model, official_files[variant])  # format detected
    assert summary["format"] == "official" and summary["new"] == [] and summary["skipped"] == []
    with torch.no_grad():
        logits = model(official_input()).numpy()
    expected = np.load(OFFICIAL / "expected_logits.npz")[variant]
    assert logits.shape == expected.shape == (2, 400)
    relative = np.abs(logits - expected).max() / np.abs(expected).max()
    assert relative <= 1e-5, relative


def test_official_checkpoint_in_its_training_wrapper_and_as_model_pretrained(official_files, tmp_path):
    """mmcv-style {"state_dict", "meta"} files load too; ``pretrained=`` takes the official file: exactly where
    the classes agree, and as an initialisation (classifier left new) where they do not."""
    state = torch.load(official_files["i3d_r50_dsa"], weights_only=True)
    torch.save({"meta": {"epoch": 100, "config": "r50_e100.py"}, "state_dict": state}, tmp_path / "epoch_100.pth")
    exact = create_model("i3d_r50_dsa", num_classes=400)
    assert load_checkpoint_into(exact, tmp_path / "epoch_100.pth", "official")["loaded"] == len(exact.state_dict())
    assert torch.equal(
        exact.layer2[1].aggregator.kernel_generator[3].weight, state["backbone.layer2.1.dsa.generate.3.weight"]
    )
    assert torch.equal(exact.layer3[5].conv1.weight, state["backbone.layer3.5.block.conv1.weight"])
    assert torch.equal(exact.fc.bias, state["cls_head.fc_cls.bias"])

    same = create_model("i3d_r50_dsa", num_classes=400, pretrained=str(official_files["i3d_r50_dsa"]))
    assert all(torch.equal(v, same.state_dict()[k]) for k, v in exact.state_dict().items())
    torch.manual_seed(0)
    fresh = create_model("i3d_r50_dsa", num_classes=200)
    torch.manual_seed(0)  # the same initialisation: what the file does not hold keeps it
    tuned = create_model("i3d_r50_dsa", num_classes=200, pretrained=str(official_files["i3d_r50_dsa"]))
    assert torch.equal(tuned.layer4[2].bn3.running_var, exact.layer4[2].bn3.running_var)
    assert torch.equal(tuned.fc.weight, fresh.fc.weight)  # another class count: the classifier starts anew
    # a checkpoint without DSA initialises a DSA model's backbone; its aggregators start from their init
    torch.manual_seed(0)
    dsa = create_model("i3d_r50_dsa", num_classes=200, pretrained=str(official_files["i3d_r50"]))
    plain = torch.load(official_files["i3d_r50"], weights_only=True)
    assert torch.equal(dsa.layer2[1].conv1.weight, plain["backbone.layer2.1.conv1.weight"])
    assert torch.equal(
        dsa.layer2[1].aggregator.kernel_generator[0].weight, fresh.layer2[1].aggregator.kernel_generator[0].weight
    )


def one_line_error(model, path, *expected: str, **kwargs) -> str:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightLoadError) as e:
        load_checkpoint_into(model, path, **kwargs)
    message = str(e.value)
    assert "\n" not in message, message
    for text in expected:
        assert text in message, (text, message)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing loaded
    return message


def test_an_official_file_of_another_variant_names_the_variant_and_the_first_mismatch(official_files):
    one_line_error(
        create_model("i3d_r50"),
        official_files["i3d_r50_dsa"],
        "(official DSANet format) does not fit i3d_r50 (400 classes)",
        "first mismatch: the file's backbone.layer2.1.dsa.generate.0.weight "
        "(our layer2.1.aggregator.kernel_generator.0.weight) has no place in the model",
        "(30 unexpected)",
    )
    one_line_error(
        create_model("i3d_r50_dsa"),
        official_files["i3d_r50"],
        "does not fit i3d_r50_dsa (400 classes)",
        "first mismatch: the model's layer2.1.aggregator.kernel_generator.0.weight is not in the file",
    )
    one_line_error(
        create_model("tsm_r50_dsa"),
        official_files["i3d_r50_dsa"],
        "does not fit tsm_r50_dsa (400 classes)",
        "first mismatch: the file's backbone.conv1.weight (our conv1.weight) is (64, 3, 1, 7, 7), "
        "the model's (64, 3, 7, 7)",
    )
    one_line_error(
        create_model("i3d_r50_dsa", num_classes=200),
        official_files["i3d_r50_dsa"],
        "does not fit i3d_r50_dsa (200 classes)",
        "the file's cls_head.fc_cls.weight (our fc.weight) is (400, 2048), the model's (200, 2048)",
    )
    # a format forced on the wrong file is refused as well, not half loaded
    one_line_error(
        create_model("i3d_r50"),
        official_files["i3d_r50"],
        "(harness format) does not fit i3d_r50 (400 classes): first mismatch: the model's conv1.weight is not in",
        format="harness",
    )


# ---------------------------------------------------------------------------------------------------------
# mmaction2: the layout its ResNet / ResNetTSM / ResNet3d + heads give a state dict


def mmaction2_layout(model, *, shifted_blocks=None) -> dict:
    """{mmaction2 key: shape} of ``model``'s architecture, key by key from mmaction2's naming. TSM: the blocks
    in ``shifted_blocks`` (default: all, ResNetTSM's 'blockres' for depth < 101) wrap conv1.conv as .net."""
    out = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "fc":
            new = "cls_head.fc_cls." + parts[1]
        elif parts[0] in ("conv1", "bn1"):  # the stem: one ConvModule named conv1
            new = "backbone.conv1." + ("conv." if parts[0] == "conv1" else "bn.") + parts[1]
        else:
            stage, block, module, rest = parts[0], parts[1], parts[2], parts[3:]
            if module == "downsample":
                new = f"{stage}.{block}.downsample.{'conv' if rest[0] == '0' else 'bn'}." + ".".join(rest[1:])
            elif module.startswith("conv"):
                net = ".net" if module == "conv1" and _shifted(model, f"{stage}.{block}", shifted_blocks) else ""
                new = f"{stage}.{block}.{module}.conv{net}." + ".".join(rest)
            else:  # bn{n} -> conv{n}.bn
                new = f"{stage}.{block}.conv{module[2:]}.bn." + ".".join(rest)
            new = "backbone." + new
        out[new] = tuple(value.shape)
    return out


def _shifted(model, block, shifted_blocks) -> bool:
    if model.config.flavour != "tsm":
        return False
    return shifted_blocks is None or block in shifted_blocks


def test_mmaction2_tsm_r50_checkpoint_loads_exactly(tmp_path):
    model = create_model("tsm_r50", num_classes=400)
    layout = mmaction2_layout(model)
    # names pinned by mmaction2's source (ResNet's ConvModule stem and blocks, ResNetTSM's blockres shift)
    for key in (
        "backbone.conv1.conv.weight",
        "backbone.conv1.bn.running_mean",
        "backbone.layer1.0.conv1.conv.net.weight",
        "backbone.layer1.0.conv1.bn.weight",
        "backbone.layer2.0.conv2.bn.weight",
        "backbone.layer4.0.downsample.conv.weight",
        "backbone.layer4.0.downsample.bn.running_var",
        "cls_head.fc_cls.weight",
    ):
        assert key in layout, key
    state = ruled_state(layout)
    torch.save({"meta": {"mmaction2_version": "1.2.0"}, "state_dict": state}, tmp_path / "tsm.pth")
    summary = load_checkpoint_into(model, tmp_path / "tsm.pth")
    assert summary["format"] == "mmaction2" and summary["loaded"] == len(model.state_dict())
    # every tensor where mmaction2's module sits, looked up through the modules, not through a key map
    block = model.layer1[0]
    assert torch.equal(model.conv1.weight, state["backbone.conv1.conv.weight"])
    assert torch.equal(model.bn1.running_mean, state["backbone.conv1.bn.running_mean"])
    assert torch.equal(block.conv1.weight, state["backbone.layer1.0.conv1.conv.net.weight"])
    assert torch.equal(block.bn3.running_var, state["backbone.layer1.0.conv3.bn.running_var"])
    assert torch.equal(block.downsample[0].weight, state["backbone.layer1.0.downsample.conv.weight"])
    assert torch.equal(block.downsample[1].bias, state["backbone.layer1.0.downsample.bn.bias"])
    assert torch.equal(model.fc.weight, state["cls_head.fc_cls.weight"])
    # mmaction2 1.x's data preprocessor holds normalisation constants, no weights: ignored, and said so
    torch.save({**state, "data_preprocessor.mean": torch.zeros(3, 1, 1, 1)}, tmp_path / "pre.pth")
    assert load_checkpoint_into(create_model("tsm_r50"), tmp_path / "pre.pth")["ignored"] == ["data_preprocessor.mean"]


def test_mmaction2_files_of_another_architecture_are_refused_naming_the_first_mismatch(tmp_path):
    tsn, tsm = create_model("tsn_r50"), create_model("tsm_r50")
    torch.save(ruled_state(mmaction2_layout(tsn)), tmp_path / "tsn.pth")
    assert load_checkpoint_into(create_model("tsn_r50"), tmp_path / "tsn.pth")["format"] == "mmaction2"
    # the weights of a TSN fit a TSM, but the network is not the same: refused where it differs ...
    one_line_error(
        tsm,
        tmp_path / "tsn.pth",
        "(mmaction2 format) does not fit tsm_r50 (400 classes)",
        "first mismatch: block layer1.0: the file's block has no temporal shift, the model shifts every block",
    )
    # ... while as a starting point (model.pretrained) a TSN initialises a TSM
    assert load_checkpoint_into(create_model("tsm_r50"), tmp_path / "tsn.pth", init=True)["loaded"] > 0
    torch.save(ruled_state(mmaction2_layout(tsm)), tmp_path / "tsm.pth")
    one_line_error(tsn, tmp_path / "tsm.pth", "does not fit tsn_r50", "block layer1.0: the file's block shifts")
    # mmaction2's ResNet-101 TSM shifts every other block (n_round 2): not our tsm_r101
    r101 = create_model("tsm_r101", width=8, num_classes=10)
    every_other = {f"layer{s + 1}.{b}" for s, n in enumerate((3, 4, 23, 3)) for b in range(0, n, 2)}
    torch.save(ruled_state(mmaction2_layout(r101, shifted_blocks=every_other)), tmp_path / "r101.pth")
    one_line_error(r101, tmp_path / "r101.pth", "does not fit tsm_r101 (10 classes)", "first mismatch: block layer1.1")
    # mmaction2's I3D R50 (conv1 5x7x7, temporal strides) is not ours: refused at its stem
    i3d = create_model("i3d_r50")
    layout = mmaction2_layout(i3d)
    layout["backbone.conv1.conv.weight"] = (64, 3, 5, 7, 7)
    torch.save(ruled_state(layout), tmp_path / "i3d.pth")
    one_line_error(
        i3d,
        tmp_path / "i3d.pth",
        "does not fit i3d_r50 (400 classes)",
        "first mismatch: the file's backbone.conv1.conv.weight (our conv1.weight) is (64, 3, 5, 7, 7), "
        "the model's (64, 3, 1, 7, 7)",
    )


def test_mmaction2_slowonly_layout_is_our_i3d(tmp_path):
    """mmaction2's ResNet3dSlowOnly R50 (conv1 1x7x7, no temporal stride or pool2, res4/res5 inflated 3x1x1)
    has our I3D's tensors: its checkpoint loads exactly."""
    model = create_model("i3d_r50", num_snippets=1, num_frames=8)
    layout = mmaction2_layout(model)
    assert layout["backbone.layer3.0.conv1.conv.weight"] == (256, 512, 3, 1, 1)
    assert layout["backbone.layer2.0.conv1.conv.weight"] == (128, 256, 1, 1, 1)
    state = ruled_state(layout)
    torch.save(state, tmp_path / "slowonly.pth")
    assert load_checkpoint_into(model, tmp_path / "slowonly.pth")["format"] == "mmaction2"
    assert torch.equal(model.layer3[0].conv1.weight, state["backbone.layer3.0.conv1.conv.weight"])


# ---------------------------------------------------------------------------------------------------------
# our own run checkpoints; `eval --checkpoint`

TINY = {"variant": "tsm_r18_dsa", "width": 8, "num_snippets": 2, "num_frames": 2, "num_classes": 3}


def tiny(variant: str = "tsm_r18_dsa"):
    return create_model(variant, **{k: v for k, v in TINY.items() if k != "variant"})


def trained_like(model) -> dict:
    """A state dict with every tensor set (BN statistics included), as after training."""
    return {k: ruled_tensor(k, v.shape) if v.dtype.is_floating_point else v for k, v in model.state_dict().items()}


def test_a_run_checkpoint_loads_and_another_variants_is_refused(tmp_path):
    model = tiny()
    state = trained_like(model)
    torch.save({"model": state, "optimizer": {"state": {}}, "epoch": 3, "step": 0}, tmp_path / "checkpoint.pt")
    assert read_weights(tmp_path / "checkpoint.pt").format == "harness"
    summary = load_checkpoint_into(model, tmp_path / "checkpoint.pt")
    assert summary["format"] == "harness" and summary["loaded"] == len(state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    other = tiny("tsm_r18")
    one_line_error(
        other,
        tmp_path / "checkpoint.pt",
        "(harness format) does not fit tsm_r18 (3 classes)",
        "the file's layer2.1.aggregator.kernel_generator.0.weight has no place in the model",
    )


def official_names(model, state: dict) -> dict:
    """``state`` of our ``model`` in the official DSANet code's names (see tests/data/official_checkpoint)."""
    wrapped = {k.rsplit(".aggregator.", 1)[0] for k in state if ".aggregator." in k}
    out = {}
    for key, value in state.items():
        if key.startswith("fc."):
            out["cls_head.fc_cls." + key[3:]] = value
            continue
        parts = key.split(".")
        block = ".".join(parts[:2])
        if block in wrapped:
            if parts[2] == "aggregator":  # aggregator.kernel_generator.N -> dsa.generate.N
                key = f"{block}.dsa.generate." + ".".join(parts[4:])
            else:
                key = f"{block}.block." + ".".join(parts[2:])
        if model.config.flavour == "tsm" and len(parts) > 3 and parts[2] == "conv1":
            key = key.replace(".conv1.", ".conv1.net.")  # TemporalShift wraps conv1 (codes/.../resnet_tsm.py)
        out["backbone." + key] = value
    return out


@pytest.fixture
def run_folder(tmp_path):
    """A run folder holding only a config (tiny tsm_r18_dsa, 3 classes) and three real test videos."""
    rng = np.random.default_rng(0)
    lines = []
    (tmp_path / "v").mkdir()
    for i in range(3):
        with av.open(str(tmp_path / "v" / f"{i}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 32
            s.pix_fmt = "yuv420p"
            for _ in range(12):
                frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        lines.append(f"v/{i}.mp4 {i}")
    (tmp_path / "test.txt").write_text("\n".join(lines) + "\n")
    config = {
        "task": "train",
        "model": dict(TINY),
        "data": {"test": str(tmp_path / "test.txt"), "root": str(tmp_path), "frame_interval": 1, "size": 32},
        "eval": {"test_groups": 1, "crops": 1, "batch_size": 3},
    }
    run = RunDir(tmp_path / "run").create()
    run.write_config(RunConfig.from_dict(config).record())
    return tmp_path / "run"


def _eval(capsys, argv, *, named: bool = False) -> dict:
    """The printed eval result; without ``named``, less the name of its predictions file (its stem differs)."""
    assert main(["eval", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return out if named else {k: v for k, v in out.items() if k != "predictions"}


def test_eval_checkpoint_evaluates_official_files_like_our_own(run_folder, capsys, tmp_path):
    model = tiny()
    state = trained_like(model)
    torch.save({"model": state}, run_folder / "checkpoint.pt")
    ours = _eval(capsys, [str(run_folder)])
    torch.save(official_names(model, state), tmp_path / "official.pth")
    official = _eval(capsys, [str(run_folder), "--checkpoint", str(tmp_path / "official.pth")], named=True)
    assert json.loads((run_folder / "eval-1x1-official.json").read_text()) == official
    assert official.pop("predictions") == "eval-1x1-official.predictions.parquet"
    assert official == ours and ours["num_videos"] == 3
    forced = _eval(
        capsys, [str(run_folder), "--checkpoint", str(tmp_path / "official.pth"), "--checkpoint-format", "official"]
    )
    assert forced == ours
    # our own checkpoint through --checkpoint (a copy elsewhere): the same again
    torch.save({"model": state}, tmp_path / "copy.pt")
    assert _eval(capsys, [str(run_folder), "--checkpoint", str(tmp_path / "copy.pt")]) == ours


def test_eval_checkpoint_of_another_architecture_is_one_line(run_folder, capsys, tmp_path):
    plain = tiny("tsm_r18")
    torch.save(official_names(plain, trained_like(plain)), tmp_path / "plain.pth")
    assert main(["eval", str(run_folder), "--checkpoint", str(tmp_path / "plain.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("dsa-harness eval: error: --checkpoint: "), err
    assert "does not fit tsm_r18_dsa (3 classes)" in err
    assert "first mismatch: the model's layer2.1.aggregator.kernel_generator.0.weight is not in the file" in err


# ---------------------------------------------------------------------------------------------------------
# ImageNet initialisation: `dsa-harness weights imagenet`, 2-D -> 3-D inflation


def torchvision_resnet(depth: int) -> dict:
    """A randomly initialised torchvision ResNet state dict (BN statistics and scales random too, so that no
    block is an identity). torchvision is not installed in this project: where it is absent the torchvision key
    layout comes from our own 2-D ResNet (TSN flavour, 1000 classes), whose names are torchvision's
    (harness/models/resnet.py); where it is installed, from torchvision's own model."""
    try:
        import torchvision
    except ImportError:
        model = create_model(f"tsn_r{depth}", num_classes=1000)
    else:
        model = getattr(torchvision.models, f"resnet{depth}")()
    return {
        k: ruled_tensor(f"tv{depth}.{k}", v.shape) if v.dtype.is_floating_point else v
        for k, v in model.state_dict().items()
    }


@pytest.fixture(scope="module")
def imagenet_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    for depth in (18, 50):
        torch.save(torchvision_resnet(depth), root / f"resnet{depth}-tv.pth")
    return root


def test_weights_imagenet_writes_the_file_the_grids_use(imagenet_files, tmp_path, capsys):
    out = tmp_path / "data" / "pretrained" / "resnet50_imagenet.pth"
    argv = [
        "weights",
        "imagenet",
        "--arch",
        "resnet50",
        "--out",
        str(out),
        "--from",
        str(imagenet_files / "resnet50-tv.pth"),
    ]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    written, source = (
        torch.load(out, weights_only=True),
        torch.load(imagenet_files / "resnet50-tv.pth", weights_only=True),
    )
    assert list(written) == [k for k in source if not k.endswith("num_batches_tracked")]
    assert all(torch.equal(v, source[k].float()) for k, v in written.items())
    assert read_weights(out).format == "torchvision"
    # an existing file is kept unless --force
    assert main(argv) == 2 and "exists; --force to overwrite it" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    # the grids' models take it: a 2-D one loads all but the 1000-way classifier
    tsn = create_model("tsn_r50", num_classes=200)
    summary = load_checkpoint_into(tsn, out, init=True)
    assert summary["skipped"] == ["fc.weight", "fc.bias"] and summary["inflated"] == []
    assert torch.equal(tsn.layer3[2].conv2.weight, written["layer3.2.conv2.weight"])


def test_inflated_imagenet_weights_give_the_2d_network_on_a_static_video(imagenet_files, tmp_path):
    """I3D from 2-D weights: on a video of one repeated frame, every frame the temporal zero padding cannot
    reach (res4 + res5: nine 3x1x1 convolutions, 9 frames from either end) has the 2-D network's features on
    that frame; the frames near the ends see the padding and differ."""
    out = tmp_path / "r50.pth"
    assert (
        main(
            [
                "weights",
                "imagenet",
                "--arch",
                "resnet50",
                "--out",
                str(out),
                "--from",
                str(imagenet_files / "resnet50-tv.pth"),
            ]
        )
        == 0
    )
    i3d = create_model("i3d_r50", num_snippets=1, num_frames=20, num_classes=7, pretrained=str(out)).eval()
    tsn = create_model("tsn_r50", num_snippets=1, num_frames=1, num_classes=7, pretrained=str(out)).eval()
    summary = load_checkpoint_into(create_model("i3d_r50", num_classes=7), out, init=True)
    assert "layer3.0.conv1.weight" in summary["inflated"] and "conv1.weight" in summary["inflated"]

    def features(model, x):  # the backbone's output before any pooling
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        return model.layer4(model.layer3(model.layer2(model.layer1(x))))

    frame = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():
        flat = features(tsn, frame)  # (1, 2048, 2, 2)
        clip = features(i3d, frame.unsqueeze(2).expand(1, 3, 20, 64, 64).contiguous())  # (1, 2048, 20, 2, 2)
    scale = flat.abs().max()
    for t in (9, 10):
        assert (clip[:, :, t] - flat).abs().max() <= 1e-4 * scale, t
    assert (clip[:, :, 0] - flat).abs().max() > 1e-2 * scale  # the padding is seen at the ends


def test_imagenet_file_of_another_arch_names_the_variant_and_the_first_mismatch(imagenet_files, tmp_path, capsys):
    r18 = imagenet_files / "resnet18-tv.pth"
    rc = main(["weights", "imagenet", "--arch", "resnet50", "--out", str(tmp_path / "x.pth"), "--from", str(r18)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert f"--from: {r18} is not torchvision's resnet50: first mismatch at layer1.0.conv1.weight: " in err
    assert "the file's is (64, 64, 3, 3), resnet50's (64, 64, 1, 1)" in err
    assert not (tmp_path / "x.pth").exists()
    one_line_error(
        create_model("i3d_r50"),
        r18,
        f"model.pretrained: {r18} (torchvision ImageNet format) does not fit i3d_r50 (400 classes)",
        "first mismatch: the file's layer1.0.conv1.weight is (64, 64, 3, 3), the model's (64, 64, 1, 1, 1)",
        init=True,
        what="model.pretrained",
    )


def test_weights_imagenet_without_torchvision_or_a_file_says_how(tmp_path, capsys):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torchvision is installed: the command would download")
    rc = main(["weights", "imagenet", "--arch", "resnet50", "--out", str(tmp_path / "x.pth")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert "torchvision is not installed" in err and "--from FILE" in err and "resnet50-0676ba61.pth" in err
