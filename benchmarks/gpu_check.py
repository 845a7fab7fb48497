"""GPU check: the harness's CUDA code paths on one GPU in a few minutes, with a Markdown report.

    python benchmarks/gpu_check.py                  # or: make gpu-check (about 3-5 minutes on one H200)
    python benchmarks/gpu_check.py --budget-s 300 --only fwd_bwd,memory
    python benchmarks/gpu_check.py --cpu-dry-run    # every check with tiny models on the CPU (tests this script)

Checks, highest priority first (one that no longer fits in --budget-s is skipped and reported as skipped):

  env       torch / CUDA / cuDNN / NCCL versions, the GPU, its memory, bf16 support
  fwd_bwd   tsm_r50, tsm_r50_dsa, i3d_r50, i3d_r50_dsa: forward + backward on CUDA (fp32, 2 videos x U4 x T8 x
            224): finite loss, every parameter has a finite gradient; eval-mode logits equal the CPU's (fp32,
            TF32 off) within rtol 1e-3
  amp       one bf16 and one fp16 training step (GradScaler) of tsm_r50_dsa and i3d_r50_dsa with the engine's
            recipe (uint8 -> normalize on the GPU, autocast, SGD Nesterov, clip 40): finite loss and scale,
            weights changed
  nccl      a one-process NCCL group: DDP(device_ids=[0]); a no_sync micro-step then a synced step (fp32: the
            gradients equal the plain model's; bf16: finite), all_gather_object, all_reduce, broadcast, barrier
  engine    `train_and_evaluate` on CUDA on a small synthetic video set (tsm_r50_dsa in bf16, i3d_r50_dsa in fp16,
            one epoch at 64 px), then `evaluate_run(device="cuda", amp="auto", workers=2)` reproduces the test
            of its final.json, which records the device and the peak memory
  decode    torchcodec-cuda (NVDEC) against decord's CPU frames of 8 real H.264 clips at the paper's sampling:
            mean / max |difference| within DECODE_TOLERANCE, videos/s of both (not checked where torchcodec-cuda
            cannot load: said so)
  memory    peak memory of a training step (the second: momentum buffers exist) at the paper's batch (12 videos
            x U4 x T8 x 224) of the four variants, fp32 and bf16, with the engine's settings (deterministic,
            cudnn.benchmark off): measured (max_memory_allocated) vs the stated model of
            harness.measure.memory, within 30%; recorded in RESULTS/benchmarks/train_memory.json, where
            `sweep show` finds them
  step      i3d_r50_dsa bf16 training step at batch 12: ms/step, videos/s, peak memory, with the harness's
            defaults and with cudnn.benchmark on (non-deterministic)
  latency   DSA / backbone ratios (TSM and I3D R50) of forward passes and training steps at batch 1 and 8,
            fp32 and bf16 autocast, eager, cudnn.benchmark on, by harness.measure.profile_variants (each pair
            in the same interleaved rounds: median of per-round ratios, bootstrap 95% interval; peak memory)
  cuda_graphs  the same forward ratios at batch 1 under torch.compile(mode="reduce-overhead") (CUDA graphs)

Writes the report to --out (default results/benchmarks/gpu_check.md) and its data next to it (.json). Without
CUDA it prints "no GPU" and exits 0 (nothing checked, no report written). Exit code 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.config import TrainConfig, model_dict  # noqa: E402
from harness.data.transforms import normalize  # noqa: E402
from harness.engine.train import build_optimizer  # noqa: E402
from harness.measure.environment import describe_environment  # noqa: E402
from harness.models import create_model, resolve_config  # noqa: E402
from harness.numfmt import format_interval  # noqa: E402
from harness.results.rundir import atomic_write_json  # noqa: E402

PAPER_VARIANTS = ("tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa")
PAIRS = (("tsm_r50_dsa", "tsm_r50"), ("i3d_r50_dsa", "i3d_r50"))
MEMORY_TOLERANCE = 0.30
"""The stated memory model must be within 30% of the measured peak."""
GB = 1e9


class Setting:
    """Sizes and device of a run: the paper's on CUDA, tiny ones for the CPU dry run."""

    def __init__(self, dry_run: bool):
        self.dry = dry_run
        self.device = torch.device("cpu") if dry_run else torch.device("cuda", 0)
        self.size = 32 if dry_run else 224
        self.frames = 2 if dry_run else 8
        self.overrides = {"width": 8, "num_frames": 2} if dry_run else {}
        self.paper_batch = 2 if dry_run else 12
        self.rounds = 2 if dry_run else 7

    def amp(self, dtype):
        """The autocast dtype of a check: as asked on CUDA; none in the CPU dry run, which checks this script's
        logic, not the CPU's half-precision kernels (on tiny conv3d shapes some give NaN gradients, or crash)."""
        return None if self.dry else dtype

    def model(self, variant: str, num_classes: int = 400):
        return create_model(variant, num_classes=num_classes, **self.overrides)

    def config(self, variant: str, num_classes: int = 400):
        return resolve_config(variant, num_classes=num_classes, **self.overrides)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def clips(self, batch: int, size: int | None = None) -> torch.Tensor:
        size = size or self.size
        g = torch.Generator().manual_seed(batch * 1000 + size)
        return torch.randint(0, 256, (batch, 4, 3, self.frames, size, size), dtype=torch.uint8, generator=g)


def harness_defaults() -> None:
    """What `train` sets (train.deterministic = True): deterministic algorithms, cudnn.benchmark off."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def fast_settings() -> None:
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True


def free_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# the checks: each returns (ok, one-line result, data for the report)
def check_env(s: Setting, args) -> tuple[bool, str, dict]:
    env = describe_environment(s.device)
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(s.device),
        "device_name": env["hardware"]["device_name"],
        "cpu_count": os.cpu_count(),
        "git_commit": env["git_commit"],
    }
    if s.device.type == "cuda":
        props = torch.cuda.get_device_properties(s.device)
        info.update(
            memory_gb=round(props.total_memory / GB, 1),
            capability=f"{props.major}.{props.minor}",
            bf16=torch.cuda.is_bf16_supported(),
            cudnn=torch.backends.cudnn.version(),
            device_count=torch.cuda.device_count(),
        )
        try:
            v = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        except Exception as e:  # noqa: BLE001 - informative only
            info["nccl"] = f"unknown ({type(e).__name__})"
    ok = s.device.type != "cuda" or info.get("bf16", False)
    text = f"{info['device_name']}, torch {info['torch']}, CUDA {info['cuda']}" + (
        f", {info['memory_gb']} GB, cuDNN {info['cudnn']}, NCCL {info['nccl']}, bf16 {info['bf16']}"
        if "memory_gb" in info
        else ""
    )
    return ok, text, info


def check_fwd_bwd(s: Setting, args) -> tuple[bool, str, dict]:
    harness_defaults()
    rows, bad = {}, []
    for v in PAPER_VARIANTS:
        torch.manual_seed(0)
        model = s.model(v).to(s.device).train()
        x = normalize(s.clips(2).to(s.device))
        y = torch.tensor([1, 2], device=s.device)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        # eval-mode logits on this device vs the CPU (fp32, TF32 off)
        model.eval()
        x1 = normalize(s.clips(1))
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.no_grad():
                dev_logits = model(x1.to(s.device)).float().cpu()
                cpu_logits = copy.deepcopy(model).cpu()(x1)
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        err = float((dev_logits - cpu_logits).abs().max())
        scale = float(cpu_logits.abs().max())
        close = err <= 1e-3 * scale + 1e-5
        ok = math.isfinite(loss.item()) and not missing and close
        rows[v] = {"loss": round(loss.item(), 4), "params_without_finite_grad": missing[:5], "max_abs_diff_vs_cpu": err}
        rows[v]["logit_scale"] = scale
        if not ok:
            bad.append(v)
        del model
        free_cuda()
    text = "all four: finite loss and gradients, logits = CPU's" if not bad else f"FAILED: {', '.join(bad)}"
    return not bad, text, {"rows": rows}


def _step(model, opt, clips_u8, labels, amp_dtype, scaler, clip=40.0):
    """One optimiser step as the engine takes it."""
    opt.zero_grad(set_to_none=True)
    x = normalize(clips_u8.to(labels.device, non_blocking=True))
    with torch.autocast(labels.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), labels)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(opt)
    scaler.update()
    return loss


def check_amp(s: Setting, args) -> tuple[bool, str, dict]:
    harness_defaults()
    rows, bad = {}, []
    for v in ("tsm_r50_dsa", "i3d_r50_dsa"):
        for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            torch.manual_seed(0)
            model = s.model(v).to(s.device).train()
            before = [p.detach().clone() for p in model.parameters()]
            opt = build_optimizer(model, TrainConfig(), lr=0.01)
            scaler = torch.amp.GradScaler(s.device.type, enabled=dtype is torch.float16)
            labels = torch.tensor([0, 1, 2, 3], device=s.device)
            losses, changed = [], 0
            while not changed and len(losses) < 8:  # fp16: GradScaler skips the steps whose gradients overflow
                losses.append(_step(model, opt, s.clips(4), labels, s.amp(dtype), scaler).item())
                changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
            scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
            ok = all(math.isfinite(x) for x in losses) and math.isfinite(scale) and changed > 0
            rows[f"{v} {name}"] = {
                "losses": [round(x, 4) for x in losses],
                "steps_until_an_update": len(losses),
                "scale": scale,
                "params_changed": changed,
            }
            if not ok:
                bad.append(f"{v} {name}")
            del model, opt
            free_cuda()
    text = "bf16 and fp16 (GradScaler) steps: finite, weights updated" if not bad else f"FAILED: {', '.join(bad)}"
    return not bad, text, {"rows": rows}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_nccl(s: Setting, args) -> tuple[bool, str, dict]:
    import torch.distributed as dist

    harness_defaults()
    cuda = s.device.type == "cuda"
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(_free_port())
    if cuda:
        torch.cuda.set_device(s.device)
    dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1, timeout=datetime.timedelta(seconds=120))
    try:
        torch.manual_seed(0)
        model = s.model("i3d_r50_dsa", num_classes=10).to(s.device).train()
        plain = copy.deepcopy(model)
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[s.device.index] if cuda else None)
        size = 32 if s.dry else 112
        x = normalize(s.clips(2, size).to(s.device))
        y = torch.tensor([1, 2], device=s.device)
        model.eval(), plain.eval()  # BN from running statistics, no dropout: the same function for both
        for net in (ddp, plain):  # fp32: an accumulation micro-step (no_sync for DDP), then a synced one
            with ddp.no_sync() if net is ddp else contextlib.nullcontext():
                F.cross_entropy(net(x), y).backward()
            F.cross_entropy(net(x), y).backward()
        diffs = [
            float((a.grad - b.grad).abs().max() / (b.grad.abs().max() + 1e-12))
            for a, b in zip(model.parameters(), plain.parameters())
            if b.grad is not None
        ]
        grads_equal = max(diffs) < 1e-3
        amp = torch.bfloat16 if cuda else None
        model.train().zero_grad(set_to_none=True)
        with ddp.no_sync():
            with torch.autocast(s.device.type, dtype=amp, enabled=amp is not None):
                loss = F.cross_entropy(ddp(x), y)
            loss.backward()
        with torch.autocast(s.device.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        finite = all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        gathered = [None]
        dist.all_gather_object(gathered, {"rank": 0, "scores": [0.5, 0.5]})
        t = torch.ones(4, device=s.device)
        dist.all_reduce(t)
        dist.broadcast(t, 0)
        dist.barrier()
        data = {
            "backend": dist.get_backend(),
            "ddp_device_ids": ddp.device_ids,
            "fp32_grads_equal_plain_model": grads_equal,
            "max_rel_grad_diff": max(diffs),
            "bf16_grads_finite": finite,
            "all_gather_object": gathered[0] == {"rank": 0, "scores": [0.5, 0.5]},
            "all_reduce_broadcast": t.tolist() == [1.0] * 4,
        }
    finally:
        dist.destroy_process_group()
    ok = grads_equal and finite and data["all_gather_object"] and data["all_reduce_broadcast"]
    text = f"{data['backend']}: DDP grads = plain model's (max rel diff {max(diffs):.1e}), bf16 finite, collectives ok"
    return ok, text if ok else "FAILED: " + json.dumps(data), data


def check_engine(s: Setting, args) -> tuple[bool, str, dict]:
    from harness.data.synthetic import generate_synthetic
    from harness.engine.evaluate_run import evaluate_run
    from harness.engine.train import train_and_evaluate

    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    rows, bad = {}, []
    try:
        synth = generate_synthetic(
            work / "synth",
            num_videos=32 if not s.dry else 16,
            num_classes=4,
            size=64 if not s.dry else 32,
            frames=64,
            val_fraction=0.25,
            workers=min(8, os.cpu_count() or 1),
            progress=False,
        )
        size = 64 if not s.dry else 32
        for variant, amp in (("tsm_r50_dsa", "bf16"), ("i3d_r50_dsa", "fp16")):
            cfg = {
                "task": "train",
                "seed": 0,
                "model": {
                    "variant": variant,
                    "num_frames": 4,
                    **{k: v for k, v in s.overrides.items() if k == "width"},
                },
                "data": {
                    "train": synth["train"],
                    "val": synth["val"],
                    "test": synth["val"],
                    "frame_interval": 2,
                    "size": size,
                    "resize": size,
                    "flip": False,
                    "num_workers": 2,
                },
                "train": {
                    "epochs": 1,
                    "batch_size": 4,
                    "base_lr": 0.01,
                    "base_batch": 4,
                    "warmup_epochs": 0,
                    "milestones": [100],
                    "amp": amp,
                    "device": s.device.type,
                },
                "eval": {"test_groups": 2, "crops": 3, "batch_size": 4},
            }
            run = work / "runs" / variant
            final = train_and_evaluate(cfg, run, echo=False)
            again = evaluate_run(run, device=str(s.device) if s.device.type == "cuda" else "cpu", amp="auto", workers=2)
            test = final["test"]
            row = {
                "amp": amp,
                "device": final["hardware"]["device"],
                "peak_mem_gb": final["train"].get("peak_mem_gb"),
                "train_loss": final["train"]["final_train_loss"],
                "test_top1": test["top1"],
                "eval_top1": again["top1"],
                "eval_loss_diff": abs(again["loss"] - test["loss"]),
                "eval_amp": again["amp"],
                "eval_device": again["device"],
                "videos": (test["num_videos"], again["num_videos"]),
            }
            ok = (
                row["device"] == s.device.type
                and math.isfinite(row["train_loss"])
                and row["videos"][0] == row["videos"][1]
                and row["eval_loss_diff"] < 1e-3  # the same scores (top-1 may flip on a near-tie: reported)
                and (s.dry or (row["peak_mem_gb"] or 0) > 0)
                and (s.dry or row["eval_amp"] == amp)
            )
            rows[variant] = row
            if not ok:
                bad.append(variant)
            free_cuda()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        harness_defaults()
    text = (
        "train (bf16, fp16) + eval on the GPU: eval reproduces the final test; peak memory recorded"
        if not bad
        else f"FAILED: {', '.join(bad)}"
    )
    return not bad, text, {"rows": rows}


def _peak_of_steps(s: Setting, variant: str, amp_dtype, batch: int, steps: int = 2) -> dict:
    """Train ``steps`` steps at ``batch``; the peak memory of the last (momentum buffers exist) and its time."""
    torch.manual_seed(0)
    model = s.model(variant).to(s.device).train()
    opt = build_optimizer(model, TrainConfig(), lr=0.01)
    scaler = torch.amp.GradScaler(s.device.type, enabled=amp_dtype is torch.float16)
    clips, labels = s.clips(batch), torch.arange(batch, device=s.device) % 400
    times, peak = [], None
    try:
        for _ in range(steps):
            if s.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(s.device)
            s.sync()
            t0 = time.perf_counter()
            loss = _step(model, opt, clips, labels, amp_dtype, scaler)
            s.sync()
            times.append(time.perf_counter() - t0)
            if s.device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(s.device) / GB
        return {"loss": loss.item(), "peak_gb": peak, "step_s": times}
    finally:
        del model, opt
        free_cuda()


def check_memory(s: Setting, args) -> tuple[bool, str, dict]:
    from harness.measure.memory import estimate_train_memory, record_measured_peak

    harness_defaults()
    rows, bad = [], []
    name = torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else "cpu"
    for amp_name, dtype in (("bf16", torch.bfloat16), ("none", None)):
        for v in PAPER_VARIANTS:
            est = estimate_train_memory(s.config(v), batch=s.paper_batch, size=s.size, amp=amp_name)
            got = _peak_of_steps(s, v, s.amp(dtype), s.paper_batch)
            row = {"variant": v, "amp": amp_name, "model_gb": est["total_gb"], "activations_gb": est["activations_gb"]}
            row.update(measured_gb=got["peak_gb"], loss=got["loss"], step_ms=1e3 * got["step_s"][-1])
            if got["peak_gb"] is not None:
                row["ratio"] = got["peak_gb"] / est["total_gb"]
                if abs(row["ratio"] - 1) > MEMORY_TOLERANCE:
                    bad.append(f"{v} {amp_name}")
                if not args.no_record:
                    record_measured_peak(
                        args.results,
                        model_dict(s.config(v)),
                        batch=s.paper_batch,
                        size=s.size,
                        amp=amp_name,
                        peak_gb=got["peak_gb"],
                        device_name=name,
                        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        source="benchmarks/gpu_check.py",
                    )
            if not math.isfinite(got["loss"]):
                bad.append(f"{v} {amp_name} loss")
            rows.append(row)
    measured = [r for r in rows if r.get("ratio")]
    if measured:
        text = (
            f"batch {s.paper_batch}: measured / model {min(r['ratio'] for r in measured):.2f}.."
            f"{max(r['ratio'] for r in measured):.2f}"
            + (f" (limit +-{MEMORY_TOLERANCE:.0%})" if not bad else f"; FAILED: {', '.join(bad)}")
        )
    else:
        text = "no peak measurement on the CPU (model estimates only)" if not bad else f"FAILED: {', '.join(bad)}"
    return not bad, text, {"rows": rows, "batch": s.paper_batch, "size": s.size}


def check_step(s: Setting, args) -> tuple[bool, str, dict]:
    rows = {}
    for name, setup in (("harness defaults (deterministic)", harness_defaults), ("cudnn.benchmark on", fast_settings)):
        setup()
        got = _peak_of_steps(s, "i3d_r50_dsa", s.amp(torch.bfloat16), s.paper_batch, steps=2 if s.dry else 5)
        step = statistics.median(got["step_s"][1:] or got["step_s"])
        rows[name] = {
            "ms_per_step": 1e3 * step,
            "videos_per_s": s.paper_batch / step,
            "peak_gb": got["peak_gb"],
            "loss": got["loss"],
        }
    harness_defaults()
    ok = all(math.isfinite(r["loss"]) for r in rows.values())
    d = rows["harness defaults (deterministic)"]
    peak = f", peak {d['peak_gb']:.1f} GB" if d["peak_gb"] is not None else ""
    text = f"i3d_r50_dsa bf16 batch {s.paper_batch}: {d['ms_per_step']:.0f} ms/step, "
    text += f"{d['videos_per_s']:.1f} videos/s{peak}"
    return ok, text, {"rows": rows}


def _paired_latency(s: Setting, settings_list: list[tuple[str, dict]], train: bool) -> dict:
    """DSA / backbone ratios with 95% intervals under each setting, by the harness's own measuring path
    (``profile_variants``: each DSA model and its backbone in the same interleaved rounds)."""
    from harness.measure.profile import profile_variants
    from harness.measure.runtime import Settings

    torch.use_deterministic_algorithms(False)
    out = {"rows": {}}
    configs = [s.config(a) for a, _ in PAIRS]
    for key, kw in settings_list:
        settings = Settings(device=str(s.device), **kw)
        records = profile_variants(
            configs, size=s.size, settings=settings, rounds=s.rounds, train=train, memory=not s.dry
        )
        out["rows"][key] = {
            r["variant"]: {
                k: r[k]
                for k in (
                    "baseline",
                    "latency_ms",
                    "baseline_latency_ms",
                    "latency_ratio",
                    "latency_ratio_ci_low",
                    "latency_ratio_ci_high",
                    "train_step_ms",
                    "train_ratio",
                    "train_ratio_ci_low",
                    "train_ratio_ci_high",
                    "infer_peak_mem_gb",
                    "settings",
                )
            }
            for r in records
        }
    free_cuda()
    return out


def _ratio_text(out: dict) -> str:
    parts = []
    for key, row in out["rows"].items():
        parts.append(key + ": " + ", ".join(f"{v.split('_')[0]} {r['latency_ratio']:.2f}" for v, r in row.items()))
    return "DSA/backbone " + "; ".join(parts)


def check_latency(s: Setting, args) -> tuple[bool, str, dict]:
    """Eager: batch 1 and 8, fp32 and bf16 (forward passes and training steps)."""
    dtypes = ("fp32",) if s.dry else ("fp32", "bf16")
    settings_list = [
        (f"batch {b} {d} eager", {"batch": b, "dtype": d, "cudnn_benchmark": True}) for b in (1, 8) for d in dtypes
    ]
    out = _paired_latency(s, settings_list, train=True)
    ratios = [r[k] for row in out["rows"].values() for r in row.values() for k in ("latency_ratio", "train_ratio")]
    return all(x is not None and math.isfinite(x) and x > 0 for x in ratios), _ratio_text(out), out


DECODE_TOLERANCE = {"mean": 1.0, "max": 16}
"""NVDEC + GPU colour conversion against the CPU decoder's frames (0-255 levels): mean |difference| <= 1, max <= 16
(the YUV planes decode alike; the RGB conversion may round differently)."""


def check_decode(s: Setting, args) -> tuple[bool, str, dict]:
    """torchcodec-cuda (NVDEC; the dry run: torchcodec on the CPU) decodes the frames the paper's sampling picks of
    8 real H.264 clips (256x340, 80 frames) as the CPU decoder (decord) does, within DECODE_TOLERANCE; videos/s
    of both (one process, open + decode)."""
    import numpy as np

    from harness.data import SnippetSampler, write_mp4
    from harness.data.backends import unavailable_reason
    from harness.data.video import decode_frames, open_video

    backend = "torchcodec" if s.dry else "torchcodec-cuda"
    why = unavailable_reason(backend)
    if why is not None:
        return True, f"not checked: {backend} {why}", {"backend": backend, "checked": False, "why": why}
    folder = Path(tempfile.mkdtemp(prefix="gpu_check_decode_"))
    try:
        h, w, n = (48, 64, 40) if s.dry else (256, 340, 80)
        rng = np.random.default_rng(0)
        paths = []
        for k in range(8):
            frames = np.clip(rng.normal(128, 40, (n, h, w, 3)).cumsum(0) % 256, 0, 255).astype(np.uint8)
            write_mp4(folder / f"{k}.mp4", frames, gop=16)
            paths.append(str(folder / f"{k}.mp4"))
        sampler = SnippetSampler(4, 8 if not s.dry else 2, 2, "train")
        items = [(p, sampler(n, np.random.default_rng(k)).ravel()) for k, p in enumerate(paths)]
        seconds, decoded = {}, {}
        for b in ("decord", backend):
            t0 = time.perf_counter()
            decoded[b] = [decode_frames(open_video(p, backend=b), idx, p) for p, idx in items]
            seconds[b] = time.perf_counter() - t0
        diffs = [np.abs(x.astype(np.int16) - y.astype(np.int16)) for x, y in zip(decoded["decord"], decoded[backend])]
        mean, most = float(np.mean([d.mean() for d in diffs])), int(max(d.max() for d in diffs))
        ok = mean <= DECODE_TOLERANCE["mean"] and most <= DECODE_TOLERANCE["max"]
        vps = {b: len(items) / t for b, t in seconds.items()}
        text = (
            f"{backend} vs decord: mean |diff| {mean:.3f}, max {most} (tolerance {DECODE_TOLERANCE}); videos/s "
            f"{backend} {vps[backend]:.1f}, decord {vps['decord']:.1f}"
        )
        return (
            ok,
            text,
            {"backend": backend, "checked": True, "mean_abs_diff": mean, "max_abs_diff": most, "videos_per_s": vps},
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_cuda_graphs(s: Setting, args) -> tuple[bool, str, dict]:
    """torch.compile(mode="reduce-overhead") (CUDA graphs: DSA's ~100 small kernels per forward are
    launch-bound at batch 1) at batch 1, fp32 and bf16; the dry run compiles nothing (no CUDA graphs on CPU)."""
    mode = "none" if s.dry else "reduce-overhead"
    dtypes = ("fp32",) if s.dry else ("fp32", "bf16")
    settings_list = [(f"batch 1 {d} {mode}", {"batch": 1, "dtype": d, "compile_mode": mode}) for d in dtypes]
    out = _paired_latency(s, settings_list, train=False)
    ratios = [r["latency_ratio"] for row in out["rows"].values() for r in row.values()]
    return all(x is not None and math.isfinite(x) and x > 0 for x in ratios), _ratio_text(out), out


CHECKS = (  # name, seconds it needs on an H200 (a phase that no longer fits is skipped), function
    ("env", 1, check_env),
    ("fwd_bwd", 45, check_fwd_bwd),
    ("amp", 25, check_amp),
    ("nccl", 15, check_nccl),
    ("engine", 60, check_engine),
    ("decode", 20, check_decode),
    ("memory", 60, check_memory),
    ("step", 30, check_step),
    ("latency", 60, check_latency),
    ("cuda_graphs", 240, check_cuda_graphs),
)


# ---------------------------------------------------------------------------------------------
# report
def _fmt(x, digits=2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown(results: list[dict], env: dict, dry: bool, budget: float, wall: float) -> str:
    failed = [r["name"] for r in results if r["status"] == "FAILED"]
    skipped = [r["name"] for r in results if r["status"] == "skipped"]
    title = "GPU check" + (" (CPU dry run: tiny models, not a GPU check)" if dry else "")
    lines = [
        f"# {title}",
        "",
        f"{env.get('device_name', '?')}, torch {env.get('torch')}, CUDA {env.get('cuda')}; commit "
        f"{env.get('git_commit')}; {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; "
        f"{wall:.0f} s of a {budget:.0f} s budget. Written by `benchmarks/gpu_check.py`.",
        "",
        "**Verdict: "
        + ("all checks that ran passed" if not failed else "FAILED: " + ", ".join(failed))
        + (f"; skipped (time): {', '.join(skipped)}" if skipped else "")
        + "**",
        "",
        "| check | status | s | result |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.0f} | {r['text'].replace('|', '/')} |")
    by = {r["name"]: r.get("data") or {} for r in results}
    mem = by.get("memory", {}).get("rows")
    if mem:
        lines += [
            "",
            f"## Peak training memory per GPU (batch {by['memory']['batch']} x U4 x T8 x {by['memory']['size']}, GB)",
            "",
            "| variant | AMP | measured | model | measured / model | model activations | ms/step |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in mem:
            lines.append(
                f"| {r['variant']} | {r['amp']} | {_fmt(r['measured_gb'])} | {_fmt(r['model_gb'])} | "
                f"{_fmt(r.get('ratio'))} | {_fmt(r['activations_gb'])} | {_fmt(r['step_ms'], 0)} |"
            )
    step = by.get("step", {}).get("rows")
    if step:
        lines += ["", "## i3d_r50_dsa bf16 training step", "", "| settings | ms/step | videos/s | peak GB |"]
        lines.append("| --- | --- | --- | --- |")
        for k, r in step.items():
            lines.append(f"| {k} | {r['ms_per_step']:.0f} | {r['videos_per_s']:.1f} | {_fmt(r['peak_gb'])} |")
    for name in ("latency", "cuda_graphs"):
        rows = (by.get(name) or {}).get("rows") or {}
        if not rows:
            continue
        lines += [
            "",
            f"## Paired latency ({name}): DSA / backbone, median of per-round ratios [95% interval]",
            "",
            "| setting | variant | ms/forward | backbone ms | forward ratio | train-step ms | train ratio | peak GB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, row in rows.items():
            for v, r in row.items():
                fwd = format_interval(*(r[f"latency_ratio{k}"] for k in ("", "_ci_low", "_ci_high")), decimals=3)
                step = format_interval(*(r[f"train_ratio{k}"] for k in ("", "_ci_low", "_ci_high")), decimals=3)
                lines.append(
                    f"| {key} | {v} | {_fmt(r['latency_ms'])} | {_fmt(r['baseline_latency_ms'])} | {fwd} | "
                    f"{_fmt(r['train_step_ms'])} | {step or '-'} | {_fmt(r['infer_peak_mem_gb'])} |"
                )
    for name in ("fwd_bwd", "amp", "nccl", "engine"):
        data = by.get(name)
        if data:
            lines += ["", f"## {name}", "", "```", json.dumps(data, indent=1, default=str)[:4000], "```"]
    errors = [r for r in results if r.get("error")]
    for r in errors:
        lines += ["", f"## {r['name']}: error", "", "```", r["error"][-3000:], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=float, default=420, help="seconds for all checks (default 420)")
    p.add_argument("--only", help="comma-separated checks to run (default: all)")
    p.add_argument(
        "--out", help="Markdown report (default results/benchmarks/gpu_check.md; dry run: ..._cpu_dry_run.md)"
    )
    p.add_argument("--results", default="results", help="results root for train_memory.json (default results)")
    p.add_argument("--no-record", action="store_true", help="do not record measured peaks in train_memory.json")
    p.add_argument("--cpu-dry-run", action="store_true", help="run every check with tiny models on the CPU")
    args = p.parse_args(argv)
    names = [c[0] for c in CHECKS]
    only = [x.strip() for x in args.only.split(",")] if args.only else names
    unknown = sorted(set(only) - set(names))
    if unknown:
        p.error(f"--only: unknown check(s) {unknown}; checks: {', '.join(names)}")
    if not args.cpu_dry_run and not torch.cuda.is_available():
        print(
            f"gpu_check: no GPU: CUDA is not available to torch {torch.__version__} (built with CUDA "
            f"{torch.version.cuda}); nothing checked, no report written (--cpu-dry-run exercises the checks on the CPU)"
        )
        return 0
    s = Setting(args.cpu_dry_run)
    out = Path(args.out or f"results/benchmarks/gpu_check{'_cpu_dry_run' if s.dry else ''}.md")
    start = time.perf_counter()
    results, env = [], {}
    for name, need, fn in CHECKS:
        if name not in only:
            continue
        left = args.budget_s - (time.perf_counter() - start)
        if left < need and name != "env":
            results.append(
                {"name": name, "status": "skipped", "seconds": 0, "text": f"needs ~{need} s, {left:.0f} s left"}
            )
            print(f"[gpu_check] {name}: skipped ({left:.0f} s left, needs ~{need} s)", flush=True)
            continue
        print(f"[gpu_check] {name} ...", flush=True)
        t0 = time.perf_counter()
        rec = {"name": name}
        try:
            ok, text, data = fn(s, args)
            rec.update(status="ok" if ok else "FAILED", text=text, data=data)
        except Exception as e:  # noqa: BLE001 - a check that raises has failed; the others still run
            rec.update(status="FAILED", text=f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            rec["error"] = traceback.format_exc()
            free_cuda()
        rec["seconds"] = time.perf_counter() - t0
        if name == "env" and rec.get("data"):
            env = rec["data"]
        results.append(rec)
        print(f"[gpu_check] {name}: {rec['status']} in {rec['seconds']:.0f} s: {rec['text']}", flush=True)
    if not env:
        env = check_env(s, args)[2]
    wall = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results, env, s.dry, args.budget_s, wall), encoding="utf-8")
    atomic_write_json(
        out.with_suffix(".json"),
        {"benchmark": "gpu_check", "dry_run": s.dry, "env": env, "wall_s": wall, "checks": results},
    )
    failed = [r["name"] for r in results if r["status"] == "FAILED"]
    print(f"[gpu_check] {'FAILED: ' + ', '.join(failed) if failed else 'all checks that ran passed'}; report: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
