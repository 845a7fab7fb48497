"""Multi-process runs without a GPU: who is who under SLURM (simulated environments of 2 nodes x 2 tasks
and of a job array), the device index of a rank, the local executor's one process per GPU (or per
``resources.tasks`` on CPU), the run lock where flock fails, rank 0's lock and checkpoint decisions,
per-rank seeds and RNG states, BatchNorm buffers before evaluation, and a local 2-process run that
ends with the weights of the equivalent 1-process run."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from test_engine import colour_set  # noqa: F401  (the engine tests' 24 real mp4 files, a module fixture)

import harness.engine.distributed as distributed
import harness.launch.tasks as tasks
import harness.results.lock as run_lock
from harness.engine.checkpoint import restore_rng_states, rng_state, save_checkpoint, set_rng_state
from harness.engine.distributed import (
    PORT_BASE,
    DistributedContext,
    RendezvousError,
    derive_port,
    device_for,
    init_distributed,
    parse_node_list,
    rendezvous_from_env,
    wrap_model,
)
from harness.errors import ConfigError, UsageError
from harness.launch.grid import Resources
from harness.launch.submit import run_grid, submit
from harness.results.lock import LOCK_FILE, LOCK_STALE_S, RunLock
from harness.results.rundir import RunDir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm_task(node: int, local: int, **extra: str) -> dict:
    """The variables SLURM (and submitit's sbatch file) give task ``local`` of node ``node`` of a job of
    2 nodes x 2 tasks."""
    return {
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "4711",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_NTASKS": "4",
        "SLURM_TASKS_PER_NODE": "2(x2)",
        "SLURM_NODEID": str(node),
        "SLURM_PROCID": str(2 * node + local),
        "SLURM_LOCALID": str(local),
        "SLURMD_NODENAME": f"gpu0{7 + node}",
        **extra,
    }


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this process sees ``n`` CUDA devices: ``gpus(n)``."""

    def see(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return see


# ---------------------------------------------------------------------------------------------
# rendezvous and devices
def test_two_nodes_two_tasks_from_slurm_environment(gpus):
    seen = []
    for node in (0, 1):
        for local in (0, 1):
            r = rendezvous_from_env(_slurm_task(node, local))
            gpus(2)  # each task sees both GPUs of its node
            all_visible = device_for("cuda", r.local_rank)
            gpus(1)  # --gpus-per-task=1 / --gpu-bind: each task sees its own GPU only
            bound = device_for("cuda", r.local_rank)
            seen.append((r.rank, r.world_size, r.local_rank, r.addr, r.port, str(all_visible), str(bound)))
    port = PORT_BASE + 4711
    assert seen == [
        (0, 4, 0, "gpu07", port, "cuda:0", "cuda:0"),
        (1, 4, 1, "gpu07", port, "cuda:1", "cuda:0"),
        (2, 4, 0, "gpu07", port, "cuda:0", "cuda:0"),
        (3, 4, 1, "gpu07", port, "cuda:1", "cuda:0"),
    ]
    # given values win; one task alone is no group; neither is a plain process
    given = rendezvous_from_env(_slurm_task(0, 0, MASTER_ADDR="10.0.0.1", MASTER_PORT="29999"))
    assert (given.addr, given.port, given.derived_port) == ("10.0.0.1", 29999, False)
    assert rendezvous_from_env({**_slurm_task(0, 0), "SLURM_NTASKS": "1"}) is None
    assert rendezvous_from_env({}) is None


def test_tasks_of_one_job_array_get_different_ports():
    """SLURM gives each array task its own SLURM_JOB_ID (the array's id is SLURM_ARRAY_JOB_ID, shared)."""
    a, b = (
        rendezvous_from_env(
            _slurm_task(0, 0, SLURM_ARRAY_JOB_ID="5000", SLURM_ARRAY_TASK_ID=str(t), SLURM_JOB_ID=str(5000 + t))
        )
        for t in (0, 1)
    )
    assert a.port != b.port and {a.port, b.port} == {PORT_BASE + 5000, PORT_BASE + 5001}
    assert all(20000 <= derive_port(str(j)) < 32768 for j in (0, 11999, 12000, 987654321))  # below ephemeral ports
    local = rendezvous_from_env(
        {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_GLOBALID": "1"}
        | {"SUBMITIT_LOCAL_LOCALID": "1", "SUBMITIT_LOCAL_JOB_ID": "31337"}
    )
    assert (local.rank, local.world_size, local.local_rank, local.addr) == (1, 2, 1, "127.0.0.1")
    assert local.port == derive_port("31337")


def test_parse_node_list():
    assert parse_node_list("gpu[07-08,10],cpu3") == ["gpu07", "gpu08", "gpu10", "cpu3"]
    assert parse_node_list("rack[1-2]-n[1-2]") == ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
    assert parse_node_list("node001") == ["node001"]


def test_init_sets_the_device_of_a_task_that_sees_one_gpu(monkeypatch, gpus):
    """Task 1 of a node with one GPU bound per task: device cuda:0, not cuda:1 (invalid device ordinal)."""
    gpus(1)
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: calls.append(("init", kw)))
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")  # restored (absent) after the test: init_distributed sets them
        monkeypatch.delenv(key)
    ctx = init_distributed("cuda", env=_slurm_task(1, 1))
    assert ctx.device == torch.device("cuda", 0) and (ctx.rank, ctx.world_size, ctx.local_rank) == (3, 4, 1)
    assert calls[0] == ("set_device", torch.device("cuda", 0))
    init = calls[1][1]
    assert init["backend"] == "nccl" and init["device_id"] == torch.device("cuda", 0)
    assert (init["rank"], init["world_size"]) == (3, 4)
    assert os.environ["MASTER_ADDR"] == "gpu07" and os.environ["MASTER_PORT"] == str(PORT_BASE + 4711)
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    with pytest.raises(ConfigError, match="no CUDA device"):
        gpus(0)
        device_for("cuda", 0)


def test_ddp_gets_the_rank_device_index(monkeypatch):
    made = {}

    def fake_ddp(module, **kw):
        made.update(kw)
        return module

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", fake_ddp)
    model = torch.nn.Linear(2, 2)
    wrap_model(model, DistributedContext(1, 2, 1, torch.device("cuda", 1)))
    assert made == {"device_ids": [1], "output_device": 1}
    made.clear()
    wrap_model(model, DistributedContext(1, 2, 1, torch.device("cpu")))
    assert made == {"device_ids": None, "output_device": None}
    assert wrap_model(model, DistributedContext()) is model


def test_a_busy_derived_port_is_refused_on_rank_0_and_recorded(tmp_path, monkeypatch):
    port = _free_port()
    if not PORT_BASE <= port < PORT_BASE + 12000:
        port = next(p for p in range(PORT_BASE + 7000, PORT_BASE + 12000) if _bindable(p))
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    env = {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_GLOBALID": "0"}
    env["SUBMITIT_LOCAL_JOB_ID"] = str(port - PORT_BASE)
    with socket.socket() as busy:
        busy.bind(("", port))
        busy.listen()
        with pytest.raises(RendezvousError, match=f"port {port} .* in use.*MASTER_PORT"):
            init_distributed("cpu", env=env)
        # in a job: the run's error, like any failure of the run (not a silent "incomplete")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        rd = RunDir(tmp_path / "run").create()
        rd.write_config({"task": "train", "train": {"device": "cpu"}})
        with pytest.raises(RendezvousError):
            tasks.execute_run(rd.path)
        assert rd.read_error()["type"] == "RendezvousError" and rd.read_job()["state"] == "failed"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))
            return True
        except OSError:
            return False


# ---------------------------------------------------------------------------------------------
# the local executor: one process per GPU, or resources.tasks gloo processes
class _FakeLocalExecutor:
    made: list = []

    def __init__(self, folder, max_num_timeout=3):
        self.params = {}
        _FakeLocalExecutor.made.append(self)

    def update_parameters(self, **kw):
        self.params.update(kw)

    def submit(self, fn, *args):
        return SimpleNamespace(job_id=str(os.getpid()), paths=SimpleNamespace(stdout="out", stderr="err"))


def _gpu_grid(path: Path, runs: int = 2, width: int = 8, **resources) -> Path:
    doc = {
        "name": path.stem,
        "task": "profile",
        "base": {"model": {"variant": "tsn_r18", "width": width}, "profile": {"size": 32, "latency": False}},
        "axes": {"product": {"model.alpha": list(range(1, runs + 1))}},
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10, **resources},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_local_executor_starts_one_process_per_gpu(tmp_path, monkeypatch, gpus):
    import submitit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(submitit, "LocalExecutor", _FakeLocalExecutor)
    monkeypatch.setattr(_FakeLocalExecutor, "made", [])
    gpus(16)
    submit(_gpu_grid(tmp_path / "g.yaml", gpus=8), cluster="local", results_root="results")
    params = [ex.params for ex in _FakeLocalExecutor.made]
    assert [p["tasks_per_node"] for p in params] == [8, 8]  # world size 8, as on SLURM
    assert [p["visible_gpus"] for p in params] == [list(range(8)), list(range(8, 16))]
    # a CPU run with resources.tasks: 2 -> 2 gloo processes; workers share the cores by cpus_per_task x tasks
    _FakeLocalExecutor.made.clear()
    gpus(0)
    # (another run: g.yaml's runs are in flight under the fake jobs, and a run id is trained once wherever asked)
    submit(_gpu_grid(tmp_path / "c.yaml", runs=1, width=16, tasks=2), cluster="local", results_root="results")
    assert [ex.params["tasks_per_node"] for ex in _FakeLocalExecutor.made] == [2]
    assert "visible_gpus" not in _FakeLocalExecutor.made[0].params


def test_local_executor_refuses_more_gpus_than_visible_unless_allowed(tmp_path, monkeypatch, gpus, capsys):
    import submitit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(submitit, "LocalExecutor", _FakeLocalExecutor)
    monkeypatch.setattr(_FakeLocalExecutor, "made", [])
    gpus(2)
    grid = _gpu_grid(tmp_path / "g.yaml", runs=1, gpus=8)
    with pytest.raises(UsageError, match=r"resources.gpus=8 .* sees 2 CUDA device.*--allow-fewer-gpus"):
        submit(grid, cluster="local", results_root="results")
    assert not (tmp_path / "results").exists() and not _FakeLocalExecutor.made  # nothing written or started
    from test_launch import sweep_cli

    assert sweep_cli(["submit", str(grid), "--cluster", "local", "--allow-fewer-gpus"]) == 0
    assert [(ex.params["tasks_per_node"], ex.params["visible_gpus"]) for ex in _FakeLocalExecutor.made] == [(2, [0, 1])]
    assert "world size 2" in capsys.readouterr().err


def test_resources_tasks():
    assert (Resources(gpus=8).tasks, Resources(gpus=8).tasks_per_node) == (8, 8)
    assert Resources(gpus=8, nodes=2).tasks_per_node == 4
    assert (Resources().tasks, Resources(tasks=4, nodes=2).tasks_per_node) == (1, 2)
    with pytest.raises(ConfigError, match="one process per GPU"):
        Resources(gpus=2, tasks=4)
    with pytest.raises(ConfigError, match="multiple of resources.nodes"):
        Resources(tasks=3, nodes=2)
    assert Resources(collective_timeout_min=0.5).collective_timeout_min == 0.5
    for bad in (0, -1, True, "10"):
        with pytest.raises(ConfigError, match=r"resources.collective_timeout_min=.*minutes > 0"):
            Resources(collective_timeout_min=bad)


# ---------------------------------------------------------------------------------------------
# RNG states
def test_cuda_rng_state_of_the_current_device_only(monkeypatch, gpus):
    """A checkpoint written on an 8-GPU node resumes on a node (or a task) that sees one GPU."""
    import torch.cuda.random as cuda_random

    gpus(1)
    store = {0: torch.full((16,), 7, dtype=torch.uint8)}

    def index(device) -> int:
        return device if isinstance(device, int) else int(str(device).partition(":")[2] or 0)

    def get(device="cuda"):
        return store[index(device)].clone()

    def set_(state, device="cuda"):
        if index(device) >= torch.cuda.device_count():
            raise RuntimeError("CUDA error: invalid device ordinal")
        store[index(device)] = state.clone()

    for mod in (torch.cuda, cuda_random):
        monkeypatch.setattr(mod, "get_rng_state", get)
        monkeypatch.setattr(mod, "set_rng_state", set_)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    state = rng_state()
    assert torch.equal(state["cuda_device"], store[0]) and "cuda" not in state
    old = {**state, "cuda": [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]}  # 8 devices, older format
    del old["cuda_device"]
    set_rng_state(old)  # this device's entry, no error
    assert torch.equal(store[0], torch.zeros(16, dtype=torch.uint8))
    set_rng_state(state)
    assert torch.equal(store[0], torch.full((16,), 7, dtype=torch.uint8))


def test_each_rank_resumes_its_own_rng_state():
    torch.manual_seed(1)
    a = rng_state()
    torch.manual_seed(2)
    b = rng_state()
    ckpt = {"rng": a, "rng_ranks": [a, b]}
    restore_rng_states(ckpt, DistributedContext(1, 2), seed=0)
    assert torch.equal(torch.get_rng_state(), b["torch"])
    restore_rng_states(ckpt, DistributedContext(0, 1), seed=0)  # another world size: rank 0's ...
    assert torch.equal(torch.get_rng_state(), a["torch"])
    restore_rng_states(ckpt, DistributedContext(2, 3), seed=0)  # ... and a rank's own seed elsewhere
    assert not torch.equal(torch.get_rng_state(), a["torch"])


# ---------------------------------------------------------------------------------------------
# the run lock
def _no_flock(monkeypatch):
    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", refuse)


def test_run_lock_falls_back_to_a_lock_file_where_flock_fails(tmp_path, monkeypatch, capsys):
    _no_flock(monkeypatch)
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.try_acquire()
    assert "refuses flock" in capsys.readouterr().err
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert not second.try_acquire()  # held by a live process
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    assert second.try_acquire()
    second.release()
    lock = tmp_path / LOCK_FILE
    # stale: a dead process of this host; another host's lock without heartbeat for LOCK_STALE_S
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    third = RunLock(tmp_path)
    assert third.try_acquire() and "stale lock" in capsys.readouterr().err
    third.release()
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    assert not RunLock(tmp_path).try_acquire()  # fresh heartbeat: held
    old = time.time() - LOCK_STALE_S - 5
    os.utime(lock, (old, old))
    fourth = RunLock(tmp_path)
    assert fourth.try_acquire()
    fourth.release()


def test_runs_complete_where_flock_fails(tmp_path, monkeypatch, capsys):
    from test_launch import write_grid

    monkeypatch.chdir(tmp_path)
    _no_flock(monkeypatch)
    result = submit(write_grid(tmp_path / "tiny.yaml"), cluster="debug", results_root="results")
    assert all(RunDir(r.run_dir).read_final()["status"] == "done" for r in result.runs)
    assert not any((r.run_dir / LOCK_FILE).exists() for r in result.runs)
    assert "refuses flock" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# two gloo processes
def _join_group(rank: int, world: int, port: int) -> DistributedContext:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    return init_distributed("cpu")


def _timeout_worker(rank: int, port: int, out: str):
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    init_distributed("cpu", timeout_s=3)
    if rank == 1:  # alive, but never joins the collective (a hung peer: its process does not exit)
        while not Path(out, "rank0.done").exists():
            time.sleep(0.1)
        return
    started = time.monotonic()
    try:
        torch.distributed.all_reduce(torch.ones(1))
        outcome = "joined"
    except RuntimeError as e:
        outcome = f"raised after {time.monotonic() - started:.1f} s: {e}"
    Path(out, "rank0.outcome").write_text(outcome)
    Path(out, "rank0.done").write_text("")
    # a gloo group whose collective timed out may abort in its destructor at exit: leave without it
    os._exit(0)


def test_collective_timeout_bounds_the_wait_for_a_hung_peer(tmp_path):
    """``init_distributed(timeout_s=3)`` (``resources.collective_timeout_min`` of a run): a rank whose peer
    is alive but never joins raises after ~3 s instead of torch's 30 gloo minutes."""
    mp.spawn(_timeout_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    outcome = (tmp_path / "rank0.outcome").read_text()
    assert outcome.startswith("raised after"), outcome
    assert 2.5 <= float(outcome.split()[2]) < 30, outcome


def _lock_worker(rank: int, port: int, run_dir: str, out: str):
    ctx = _join_group(rank, 2, port)
    tasks.LOCK_POLL_S = 0.2
    Path(out, f"joined.{rank}").write_text("")

    def fake_run_task(config, path):
        Path(out, f"started.{rank}").write_text(str(time.time()))
        return {"rank": rank}

    tasks.run_task = fake_run_task
    result = tasks.execute_run(run_dir)
    Path(out, f"result.{rank}").write_text(json.dumps(result))
    distributed.barrier(ctx)
    distributed.shutdown_distributed()


@pytest.mark.parametrize("finished_meanwhile", [False, True])
def test_ranks_wait_for_rank_0s_lock_decision(tmp_path, finished_meanwhile):
    """While another process holds the run (flock), rank 0 waits for the lock and rank 1 waits with it,
    at the decision, instead of starting the run (and timing out at the engine's first collective)."""
    rd = RunDir(tmp_path / "run").create()
    rd.write_config({"task": "train", "train": {"device": "cpu"}})
    holder = os.open(rd.path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    procs = mp.spawn(_lock_worker, args=(_free_port(), str(rd.path), str(tmp_path)), nprocs=2, join=False)
    deadline = time.time() + 120
    while not all((tmp_path / f"joined.{r}").exists() for r in (0, 1)):
        assert time.time() < deadline, "the workers did not start"
        time.sleep(0.05)
    time.sleep(2.0)  # both are in execute_run now: rank 0 waits for the lock (and rank 1 with it)
    if finished_meanwhile:  # the holder finished the run: every rank returns its record, nobody trains
        rd.write_final({"run_id": "x", "status": "done"})
    released = time.time()
    os.close(holder)
    while not procs.join():
        pass
    results = [json.loads((tmp_path / f"result.{r}").read_text()) for r in (0, 1)]
    if finished_meanwhile:
        assert results == [{"run_id": "x", "status": "done"}] * 2
        assert not list(tmp_path.glob("started.*"))
    else:
        assert results == [{"rank": 0}, {"rank": 1}]
        assert all(float((tmp_path / f"started.{r}").read_text()) >= released for r in (0, 1))


def _corrupt_worker(rank: int, port: int, run_dir: str, out: str):
    import harness.engine.resume as resume

    ctx = _join_group(rank, 2, port)
    if rank == 1:  # rank 1 must never move a file

        def refuse(self, target):
            raise AssertionError(f"rank 1 renamed {self}")

        Path.replace = refuse
    else:  # rank 0 is slow: rank 1 would otherwise see the corrupt file too
        real = resume.load_checkpoint

        def slow(path, *a, **k):
            time.sleep(1.0)
            return real(path, *a, **k)

        resume.load_checkpoint = slow
    state = resume.load_resume_state(RunDir(run_dir), lambda msg: None, ctx)
    Path(out, f"epoch.{rank}").write_text(str(state["epoch"]))
    distributed.shutdown_distributed()


def test_only_rank_0_moves_a_corrupt_checkpoint_and_all_ranks_read_the_same_file(tmp_path):
    from harness.engine.train import PREV_CHECKPOINT

    rd = RunDir(tmp_path / "run").create()
    save_checkpoint(rd.path / PREV_CHECKPOINT, {"epoch": 3})
    rd.checkpoint_path.write_bytes(b"\x80\x02 torn")
    mp.spawn(_corrupt_worker, args=(_free_port(), str(rd.path), str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"epoch.{r}").read_text() for r in (0, 1)] == ["3", "3"]
    assert (rd.path / "checkpoint.corrupt.pt").read_bytes() == b"\x80\x02 torn"


def _buffers_worker(rank: int, port: int, out: str):
    ctx = _join_group(rank, 2, port)
    bn = torch.nn.BatchNorm2d(3)
    bn.running_mean.fill_(float(rank + 1))
    distributed.broadcast_buffers(bn, ctx)
    torch.manual_seed(5)
    distributed.seed_rank(5, ctx)
    torch.save({"mean": bn.running_mean, "draw": torch.rand(4)}, Path(out, f"r{rank}.pt"))
    distributed.shutdown_distributed()


def test_buffers_come_from_rank_0_and_ranks_draw_their_own_randomness(tmp_path):
    mp.spawn(_buffers_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"r{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(r0["mean"], torch.ones(3)) and torch.equal(r1["mean"], torch.ones(3))
    torch.manual_seed(5)
    assert torch.equal(r0["draw"], torch.rand(4))  # rank 0 keeps the run's stream (one process: unchanged)
    assert not torch.equal(r1["draw"], r0["draw"])


# ---------------------------------------------------------------------------------------------
# the "done when" check
def _run_config(root: Path, **train) -> dict:
    return {
        "task": "train",
        "seed": 0,
        "model": {"variant": "tsm_r18_dsa", "width": 8, "num_frames": 2, "dropout": 0.0},
        "data": {
            "train": str(root / "train.txt"),
            "val": str(root / "val.txt"),
            "test": str(root / "val.txt"),
            "frame_interval": 2,
            "size": 32,
            "resize": 36,
            "num_workers": 0,
        },
        "train": {
            "epochs": 2,
            "base_lr": 0.05,
            "base_batch": 2,
            "warmup_epochs": 0,
            "milestones": [100],
            "threads": 1,
            **train,
        },
        "eval": {"test_groups": 2, "crops": 3, "batch_size": 3},
    }


@pytest.mark.slow
@pytest.mark.usefixtures("local_workers")
def test_local_two_process_run_ends_with_the_weights_of_the_equivalent_one_process_run(
    colour_set,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """`sweep submit --cluster local` of a run with ``resources.tasks: 2`` trains it as 2 gloo processes
    (world size 2, global batch 2, the lr of global batch 2), and its final parameters equal those of
    the equivalent 1-process run.

    Which 1-process run is equivalent: DDP is defined as the average of per-replica gradients, each
    replica's forward normalising with the BatchNorm statistics of *its own* batch. A 1-process
    forward over the concatenated batch (batch_size x 2) normalises over both halves at once: another
    function, whose weights differ from DDP's after one step (no tolerance tells "bug" from "BN over
    another batch"). SyncBatchNorm would make them equal but needs CUDA, and every variant has
    BatchNorm. So the reference takes the combined step the way DDP defines it: one process, the same
    global batch (batch_size 1 x grad_accum 2) and lr, each micro-batch a forward of its own. The
    micro-batches are then exactly the ranks' shards (rank r takes order[r::2], one video per step;
    the reference takes order[2k], then order[2k+1]), and the gradients are the same sums: DDP
    averages (g0 + g1) / 2, the reference accumulates g0 / 2 + g1 / 2 (halving is exact). Dropout is
    0, so the ranks' own seeds change nothing. Observed: the parameters agree bitwise on this
    machine; the assertion allows 1e-6 relative for other CPUs' kernels.

    Buffers are not compared: BatchNorm running statistics follow rank 0's batches under DDP (2 x 9
    updates) and every micro-batch in the reference (2 x 18). They are what evaluation uses, so the
    2-process run's test loss is checked against evaluating its own checkpoint in one process: equal
    only if both ranks scored with rank 0's buffers (broadcast before evaluation)."""
    from harness.engine.evaluate_run import evaluate_run
    from harness.engine.train import train_and_evaluate

    monkeypatch.chdir(tmp_path)
    grid = {
        "name": "ddp2",
        "task": "train",
        "base": _run_config(colour_set, batch_size=1),
        "resources": {"tasks": 2, "cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
    }
    (tmp_path / "ddp2.yaml").write_text(yaml.safe_dump(grid))
    (ddp_dir,) = run_grid(tmp_path / "ddp2.yaml", cluster="local", results_root="results", progress=False, poll_s=0.5)
    ddp_final = RunDir(ddp_dir).read_final()
    assert ddp_final is not None, (RunDir(ddp_dir).read_error() or {}).get("traceback")
    ref_final = train_and_evaluate(_run_config(colour_set, batch_size=1, grad_accum=2), tmp_path / "ref", echo=False)

    assert ddp_final["world_size"] == 2 and ref_final["world_size"] == 1
    assert ddp_final["train"]["global_batch"] == ref_final["train"]["global_batch"] == 2
    assert ddp_final["train"]["peak_lr"] == ref_final["train"]["peak_lr"] == pytest.approx(0.05)
    ddp_ckpt = torch.load(ddp_dir / "checkpoint.pt", weights_only=True)
    ref_ckpt = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)
    from harness.models import create_model

    params = {n for n, _ in create_model("tsm_r18_dsa", width=8, num_frames=2, num_classes=3).named_parameters()}
    assert params and params < set(ddp_ckpt["model"])
    for name in sorted(params):
        torch.testing.assert_close(ddp_ckpt["model"][name], ref_ckpt["model"][name], rtol=1e-6, atol=1e-7)
    assert not all(torch.equal(ddp_ckpt["model"][n], ref_ckpt["model"][n]) for n in ddp_ckpt["model"] if "running" in n)
    tracked = [n for n in ddp_ckpt["model"] if n.endswith("num_batches_tracked")]
    assert all(ddp_ckpt["model"][n] * 2 == ref_ckpt["model"][n] == 36 for n in tracked)

    # each rank kept its own RNG stream (per-rank seeds), and the checkpoint holds both
    assert len(ddp_ckpt["rng_ranks"]) == 2
    assert not torch.equal(ddp_ckpt["rng_ranks"][0]["torch"], ddp_ckpt["rng_ranks"][1]["torch"])
    # both ranks evaluated with rank 0's BatchNorm statistics: what one process gets from the checkpoint
    alone = evaluate_run(ddp_dir)
    assert ddp_final["test"]["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    assert ddp_final["test"]["top1"] == alone["top1"]


@pytest.mark.slow
@pytest.mark.usefixtures("local_workers")
def test_the_rank_that_fails_first_is_recorded_as_the_cause(colour_set, tmp_path, monkeypatch):  # noqa: F811
    """A local 2-process run whose rank 1 meets a missing video in its first batch: rank 1 records the
    cause (error.json with its rank); rank 0 then fails in its first collective (gloo sees its peer's
    connection close; at the latest after ``resources.collective_timeout_min``) and only logs its own
    error, and the run reads as failed with rank 1's error. (``run_grid`` returns once the run has failed,
    while rank 0 may still be failing.)"""
    from harness.data.loader import EpochSampler
    from harness.results.status import run_state

    monkeypatch.chdir(tmp_path)
    lines = (colour_set / "train.txt").read_text().splitlines()
    first_of_rank_1 = EpochSampler(len(lines), shuffle=True, seed=0, rank=1, world_size=2).indices()[0]
    assert first_of_rank_1 not in EpochSampler(len(lines), shuffle=True, seed=0, rank=0, world_size=2).indices()
    lines = [f"{colour_set / line}" for line in lines]  # absolute paths: the list lives in tmp_path
    lines[first_of_rank_1] = f"{colour_set / 'v' / 'not_there.mp4'} 0"
    bad = tmp_path / "train_rank1_missing.txt"
    bad.write_text("\n".join(lines) + "\n")
    config = _run_config(colour_set, batch_size=1)
    config["data"]["train"] = str(bad)
    config["train"]["epochs"] = 1
    grid = {
        "name": "ddp_fail",
        "task": "train",
        "base": config,
        "resources": {"tasks": 2, "cpus_per_task": 1, "mem_gb": 1, "time_min": 10, "collective_timeout_min": 0.25},
    }
    (tmp_path / "ddp_fail.yaml").write_text(yaml.safe_dump(grid))
    started = time.monotonic()
    (run_dir,) = run_grid(
        tmp_path / "ddp_fail.yaml", cluster="local", results_root="results", progress=False, poll_s=0.5
    )
    assert time.monotonic() - started < 240  # not torch's 30-minute gloo timeout
    rd = RunDir(run_dir)
    assert rd.read_config()["resources"]["collective_timeout_min"] == 0.25  # what execute_run gives the group
    error = rd.read_error()
    assert error["rank"] == 1 and "not_there.mp4" in error["message"], error
    assert run_state(rd).state == "failed"
    # rank 0 fails in its first collective, then logs its error and keeps rank 1's
    deadline = time.monotonic() + 120
    while "rank 0 failed after rank 1" not in rd.log_path.read_text():
        assert time.monotonic() < deadline, rd.log_path.read_text()[-2000:]
        time.sleep(0.5)
    assert rd.read_error() == error and run_state(rd).state == "failed"


# ---------------------------------------------------------------------------------------------
# per-video predictions gathered over ranks
def _eval_worker(rank: int, port: int, run_dir: str, test: str):
    from harness.engine.evaluate_run import evaluate_run

    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    result = evaluate_run(run_dir, device="cpu", workers=0, test=test, overrides={"data.on_error": "skip"})
    assert (result["world_size"], result["num_skipped"]) == (2, 1) if rank == 0 else result == {}


def test_two_ranks_write_each_listed_video_once_in_list_order_as_one_process_does(colour_set, tmp_path):  # noqa: F811
    """`eval` over 2 gloo ranks of 5 test videos (an uneven split: 3 + 2), one of them unreadable (on_error
    skip): the predictions file has each listed video exactly once, in list order, the unreadable one as a
    skipped row, equal to the 1-process file."""
    from harness.config import RunConfig
    from harness.engine.evaluate_run import evaluate_run
    from harness.models import create_model
    from harness.results.predictions import read_predictions

    config = _run_config(colour_set)
    config["model"]["num_classes"] = 3
    rc = RunConfig.from_dict(config)
    rd = RunDir(tmp_path / "run").create()
    rd.write_config(rc.record())
    torch.manual_seed(1)
    save_checkpoint(rd.checkpoint_path, {"model": create_model(rc.model).state_dict()})
    lines = [f"{colour_set / line}" for line in (colour_set / "val.txt").read_text().splitlines()[:4]]
    lines.insert(2, f"{colour_set / 'v' / 'not_there.mp4'} 1")  # line 3, list position 2: rank 0's second video
    five = tmp_path / "five.txt"  # absolute video paths: the list lives in tmp_path
    five.write_text("\n".join(lines) + "\n")

    mp.spawn(_eval_worker, args=(_free_port(), str(rd.path), str(five)), nprocs=2, join=True)
    (written,) = rd.path.glob("eval-2x3-five-*.predictions.parquet")
    two, meta = read_predictions(written, expected_rows=5)
    single = evaluate_run(rd.path, device="cpu", workers=0, test=str(five), overrides={"data.on_error": "skip"})
    one, one_meta = read_predictions(rd.path / single["predictions"], expected_rows=5)
    assert single["predictions"] == written.name and meta == one_meta
    assert two.column("index").to_pylist() == list(range(5)) and two.column("line").to_pylist() == [1, 2, 3, 4, 5]
    assert two.column("path").to_pylist() == [line.split()[0] for line in lines]
    assert two.column("skipped").to_pylist() == [False, False, True, False, False]
    assert two.column("reason").to_pylist()[2] == "missing" and two.column("pred").to_pylist()[2] == -1
    for name in ("index", "line", "path", "label", "pred", "top5", "skipped", "reason"):
        assert two.column(name).to_pylist() == one.column(name).to_pylist(), name
    assert two.column("true_score").null_count == one.column("true_score").null_count == 1
    scored = [i for i in range(5) if i != 2]
    two_scores, one_scores = (t.column("true_score").to_pylist() for t in (two, one))
    assert [two_scores[i] for i in scored] == pytest.approx([one_scores[i] for i in scored], rel=1e-5)


def test_cpu_threads_per_rank_from_each_launchers_environment():
    """Several CPU ranks share the node's cores instead of each taking torch's default (every core): the
    number and where it came from, for the environments torchrun, SLURM and the local executor give."""
    from harness.engine.runtime import cpu_threads, ranks_on_this_node

    cpus = len(os.sched_getaffinity(0))
    assert cpu_threads(3, 1, None, {}) == cpu_threads(3, 4, None, {"OMP_NUM_THREADS": "9"}) == (3, "train.threads")
    assert cpu_threads(None, 1, {"cpus_per_task": 4}, {}) == (None, "torch's default")  # one process: untouched
    assert cpu_threads(None, 2, {"cpus_per_task": 4}, {"OMP_NUM_THREADS": "4"}) == (4, "OMP_NUM_THREADS")
    assert cpu_threads(None, 2, {"cpus_per_task": 1}, {}) == (1, "resources.cpus_per_task")
    assert cpu_threads(None, 2, {"cpus_per_task": cpus + 8}, {})[0] == cpus  # never more than it may run on
    torchrun = {"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "8"}
    assert ranks_on_this_node(8, torchrun) == 2
    assert cpu_threads(None, 8, None, torchrun) == (max(1, cpus // 2), f"{cpus} CPUs / 2 ranks on this node")
    assert ranks_on_this_node(6, {"SLURM_TASKS_PER_NODE": "3(x2)"}) == 3
    assert ranks_on_this_node(6, {"SLURM_NTASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "2(x3)"}) == 2
    assert ranks_on_this_node(2, {"SUBMITIT_LOCAL_NTASKS": "2"}) == 2
    assert ranks_on_this_node(4, {}) == 4  # nothing said: one node


def _threads_worker(rank: int, port: int, config: dict, run_dir: str, out: str):
    for name in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"):
        os.environ.pop(name, None)
    _join_group(rank, 2, port)
    torch.set_num_threads(7)  # what torch's default would be on a bigger node: more than a rank's share
    from harness.engine.train import train_and_evaluate

    train_and_evaluate(config, run_dir, echo=False)
    Path(out, f"threads.{rank}").write_text(str(torch.get_num_threads()))
    distributed.shutdown_distributed()


def test_cpu_ddp_ranks_divide_the_cores_and_the_record_says_so(colour_set, tmp_path):  # noqa: F811
    """Two gloo ranks started without train.threads, OMP_NUM_THREADS or resources each take their share of
    the CPUs they may run on (not 7 each), and final.json and the log say how many and why."""
    cpus = len(os.sched_getaffinity(0))
    config = _run_config(colour_set, batch_size=1, threads=None, epochs=1, max_steps_per_epoch=1)
    config["data"].update(val=None, test=None)
    run = tmp_path / "run"
    mp.spawn(_threads_worker, args=(_free_port(), config, str(run), str(tmp_path)), nprocs=2, join=True)
    share = max(1, cpus // 2)
    assert [int((tmp_path / f"threads.{r}").read_text()) for r in (0, 1)] == [share, share]
    final = RunDir(run).read_final()
    how = f"{cpus} CPUs / 2 ranks on this node"
    assert (final["train"]["cpu_threads"], final["train"]["cpu_threads_from"]) == (share, how)
    assert f"{share} CPU threads ({how})" in (run / "log.txt").read_text()
