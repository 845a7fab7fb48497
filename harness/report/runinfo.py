"""What a report says about a set of runs: the settings they were measured with and on (device, threads, batch,
dtype, compile mode, versions: :func:`run_settings`), grouped with their run counts (:func:`hardware`), when they
finished (:func:`dates`) and their statuses (:func:`status_counts`). Used by the index page and the figures' notes."""

from __future__ import annotations

import pandas as pd


def _first(run: dict, *cols: str):
    """The first of ``cols`` the run recorded (None if none)."""
    for col in cols:
        v = run.get(col)
        if v is not None and not (isinstance(v, float) and pd.isna(v)):
            return v
    return None


def _on_off(v) -> str:
    return "on" if bool(v) else "off"


def run_settings(run: dict) -> tuple[str, ...]:
    """What a run was measured on and with, as recorded (nothing is assumed): device and its name, then
    threads, batch, dtype / autocast, TF32, cudnn.benchmark (CUDA), channels_last, compile mode and the
    torch / CUDA / cuDNN versions, from ``profile.settings.*`` (profile records since issue 13), else the
    older ``hardware.*``, ``profile.*`` and ``versions.*`` fields."""
    device = _first(run, "profile.settings.device", "hardware.device") or "?"
    device = str(device).split(":")[0]
    parts = [f"{device}: {_first(run, 'profile.settings.device_name', 'hardware.device_name')}"]
    threads = _first(run, "profile.settings.threads", "hardware.threads")
    if threads is not None:
        parts.append(f"{int(threads)} thread{'' if int(threads) == 1 else 's'}")
    batch = _first(run, "profile.settings.batch", "profile.batch")
    if batch is not None:
        parts.append(f"batch {int(batch)}")
    dtype = _first(run, "profile.settings.dtype")
    if dtype is not None:
        parts.append(f"{dtype} autocast" if _first(run, "profile.settings.autocast") else str(dtype))
    if device == "cuda":
        matmul, cudnn = _first(run, "profile.settings.tf32_matmul"), _first(run, "profile.settings.tf32_cudnn")
        if matmul is not None or cudnn is not None:
            tf32 = [f"{name} {_on_off(v)}" for name, v in (("matmul", matmul), ("cudnn", cudnn)) if v is not None]
            parts.append("TF32 " + "/".join(tf32))
        bench = _first(run, "profile.settings.cudnn_benchmark")
        if bench is not None:
            parts.append(f"cudnn.benchmark {_on_off(bench)}")
    channels_last = _first(run, "profile.settings.channels_last", "profile.channels_last")
    if channels_last is not None:
        parts.append(f"channels_last {_on_off(channels_last)}")
    mode = _first(run, "profile.settings.compile_mode")
    compiled = _first(run, "profile.compiled")
    if mode is not None:
        parts.append(f"compile {mode}")
    elif compiled is not None:
        parts.append("compiled" if compiled else "compile none")
    for name, cols in (
        ("torch", ("profile.settings.torch", "versions.torch")),
        ("CUDA", ("profile.settings.cuda", "versions.cuda")),
        ("cuDNN", ("profile.settings.cudnn",)),
    ):
        v = _first(run, *cols)
        if v is not None:
            parts.append(f"{name} {int(v) if isinstance(v, float) and v.is_integer() else v}")
    return tuple(parts)


def hardware(runs: pd.DataFrame) -> str:
    """Every recorded setting (:func:`run_settings`) with the number of runs measured so, runs with equal
    settings grouped: ``cpu: AMD EPYC, 2 threads, batch 1, fp32, channels_last off, compile none, torch
    2.13.0 (7 runs); ...``; ``unknown`` when no run recorded its device."""
    cols = [c for c in runs.columns if c.startswith(("profile.settings.", "hardware.", "versions."))]
    cols += [c for c in ("profile.batch", "profile.channels_last", "profile.compiled") if c in runs.columns]
    named = [c for c in ("profile.settings.device_name", "hardware.device_name") if c in runs.columns]
    if not named:
        return "unknown"
    # runs with equal recorded values share one run_settings call (thousands of runs, a few settings);
    # missing values as None so that equal rows compare equal (NaN != NaN), in order of first appearance
    sub = runs[cols].astype(object)
    sub = sub.where(sub.notna(), None)
    same: dict[tuple, int] = {}
    for values in zip(*(sub[c].tolist() for c in cols)):
        same[values] = same.get(values, 0) + 1
    groups: dict[tuple[str, ...], int] = {}
    for values, n in same.items():
        run = dict(zip(cols, values))
        if _first(run, *named) is None:
            continue
        key = run_settings(run)
        groups[key] = groups.get(key, 0) + n
    return "; ".join(f"{', '.join(k)} ({n} run{'' if n == 1 else 's'})" for k, n in groups.items()) or "unknown"


def dates(runs: pd.DataFrame) -> str:
    if "finished_at" not in runs.columns or runs["finished_at"].dropna().empty:
        return "-"
    d = runs["finished_at"].dropna().sort_values()
    return d.iloc[0] if d.iloc[0] == d.iloc[-1] else f"{d.iloc[0]} to {d.iloc[-1]}"


def status_counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"
