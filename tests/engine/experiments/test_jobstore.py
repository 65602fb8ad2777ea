"""The job store under every sweep and the fault tests of issue 21: a sweep killed with SIGKILL and run
again, a worker killed mid-job, a job that raises, a store entry truncated on disk. Each checks that
nothing is lost (every result is there and right) and nothing runs twice (the jobs' own logs)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_jobs import counts, logged_job

from engine.experiments import executors as X
from engine.experiments.jobs import JobsFailed, estimate_cost, run_jobs, sweep
from engine.job_context import JobContext
from engine.jobstore import FORMAT, JobStore, canonical, decode, encode, open_store

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def _specs(log, n, **extra):
    return [{"i": i, "log": str(log), **extra} for i in range(n)]


def _check(out, n):
    assert [r["i"] for r in out] == list(range(n))
    assert [r["sq"] for r in out] == [i * i for i in range(n)]
    assert [r["third"] for r in out] == [i / 3 for i in range(n)]  # exact floats after the round trip
    assert all(math.isnan(r["nan"]) for r in out)


# ------------------------------------------------------------------------------------------- the store
def test_encode_is_lossless_and_strict_json():
    obj = {"a": (1, 2.5), "nan": float("nan"), "inf": float("-inf"), "x": 0.1 + 0.2, "s": "é"}
    text = encode(obj)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = decode(text)
    assert back["a"] == [1, 2.5] and back["x"] == 0.1 + 0.2 and back["s"] == "é"
    assert math.isnan(back["nan"]) and back["inf"] == float("-inf")
    assert canonical({"b": 1, "a": (1,)}) == canonical({"a": [1], "b": 1})


def test_key_depends_on_function_spec_and_code(tmp_path):
    a = JobStore(tmp_path, code="v1")
    b = JobStore(tmp_path, code="v2")
    spec = {"i": 1, "log": "x"}
    assert a.key(logged_job, spec) == a.key(logged_job, dict(reversed(list(spec.items()))))
    assert a.key(logged_job, spec) != a.key(logged_job, {**spec, "i": 2})
    assert a.key(logged_job, spec) != a.key(_specs, spec)
    assert a.key(logged_job, spec) != b.key(logged_job, spec)
    a.put(logged_job, spec, {"r": 1})
    assert a.get(logged_job, spec) == (True, {"r": 1})
    assert b.get(logged_job, spec) == (False, None)  # another code version: a different key, no hit


def test_foreign_and_damaged_entries_are_named_and_not_trusted(tmp_path):
    heard = []
    store = JobStore(tmp_path, code="v1", warn=heard.append)
    spec, other = {"i": 1}, {"i": 2}
    path = store.path(store.key(logged_job, spec))
    store.put(logged_job, other, {"r": 2})
    os.makedirs(path.parent, exist_ok=True)
    path.write_text(store.path(store.key(logged_job, other)).read_text())  # another job's entry at this key
    assert store.get(logged_job, spec) == (False, None)
    assert "foreign" in heard[-1] and str(path) in heard[-1]
    path.write_text(json.dumps({"format": FORMAT, "key": "k"}))  # no result
    assert store.get(logged_job, spec) == (False, None)
    store.put(logged_job, spec, {"r": 1})
    entry = json.loads(path.read_text())
    entry["code"] = "v0"
    path.write_text(json.dumps(entry))
    assert store.get(logged_job, spec) == (False, None) and "code" in heard[-1]
    store.put(logged_job, spec, {"r": 1})
    path.write_text(path.read_text()[: len(path.read_text()) // 2])  # truncated on disk
    assert store.get(logged_job, spec) == (False, None)
    assert "damaged" in heard[-1] and str(path) in heard[-1]
    assert len(store.rejected) == 4


def test_open_store_default_and_none(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_STORE", str(tmp_path / "s"))
    assert open_store(None).root == tmp_path / "s"
    assert open_store("none") is None
    assert open_store(tmp_path / "t").root == tmp_path / "t"


# ------------------------------------------------------------------------------------- resume, in process
def test_rerun_reads_finished_jobs_instead_of_running_them(tmp_path):
    log = tmp_path / "log"
    with sweep(store=JobStore(tmp_path / "store")) as sw:
        first = run_jobs(logged_job, _specs(log, 5))
    assert (sw.resumed, sw.ran) == (0, 5)
    seen = []
    with sweep(store=JobStore(tmp_path / "store")) as sw:
        second = run_jobs(logged_job, _specs(log, 5), ctx=JobContext(lambda d, t, _p: seen.append((d, t))))
    assert (sw.resumed, sw.ran) == (5, 0)
    assert seen == [(5, 5)]
    assert counts(log)[1] == dict.fromkeys(range(5), 1)  # each job ran once
    _check(first, 5)
    assert canonical(first) == canonical(second)


def test_store_does_not_change_results(tmp_path):
    from engine import experiments as E

    plain = E.run("theorem1", "tiny").to_dict()
    with sweep(store=JobStore(tmp_path)):
        stored = E.run("theorem1", "tiny").to_dict()
    with sweep(store=JobStore(tmp_path)) as sw:
        resumed = E.run("theorem1", "tiny").to_dict()
    assert sw.resumed > 0 and sw.ran == 0
    for d in (stored, resumed):
        assert canonical(d["rows"]) == canonical(plain["rows"]) and d["verdict"] == plain["verdict"]
        assert canonical(d["curves"]) == canonical(plain["curves"])


def test_longest_jobs_start_first(tmp_path):
    log = tmp_path / "log"
    specs = [{"i": i, "log": str(log), "steps": s} for i, s in enumerate([10, 300, 20, 300, 5])]
    run_jobs(logged_job, specs)
    order = [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("start")]
    assert order == [1, 3, 2, 0, 4]  # by steps, ties in spec order
    assert estimate_cost({"steps": 100, "m": 5}) > estimate_cost({"steps": 100, "m": 4})


# --------------------------------------------------------------------------------------------- faults
def test_a_job_that_raises_is_reported_with_its_spec_and_the_others_finish(tmp_path):
    log = tmp_path / "log"
    specs = _specs(log, 6)
    specs[2]["raise"] = True
    store = JobStore(tmp_path / "store")
    with sweep(store=store), pytest.raises(JobsFailed) as err:
        run_jobs(logged_job, specs, jobs=2)
    assert canonical(specs[2]) in str(err.value) and "job 2 was told to fail" in str(err.value)
    assert len(err.value.failures) == 1 and err.value.failures[0][0] == specs[2]
    assert len(store) == 5
    specs[2].pop("raise")  # fixed: the rerun runs only that job
    with sweep(store=store) as sw:
        out = run_jobs(logged_job, specs, jobs=2)
    assert (sw.resumed, sw.ran) == (5, 1)
    _check(out, 6)
    starts, ends = counts(log)
    assert ends == dict.fromkeys(range(6), 1)
    assert starts == {**dict.fromkeys(range(6), 1), 2: 2}


def test_a_job_that_raises_in_process_does_not_stop_the_others(tmp_path):
    log = tmp_path / "log"
    specs = _specs(log, 3)
    specs[0]["raise"] = True
    with pytest.raises(JobsFailed):
        run_jobs(logged_job, specs)
    assert counts(log)[1] == {1: 1, 2: 1}


@pytest.mark.parametrize("schedule", X.SCHEDULES)
def test_a_worker_killed_mid_job_is_replaced_and_its_job_reruns(tmp_path, schedule):
    log = tmp_path / "log"
    specs = _specs(log, 5, sleep=0.05)
    specs[1]["kill_marker"] = str(tmp_path / "killed-once")
    with sweep(store=JobStore(tmp_path / "store"), schedule=schedule) as sw:
        out = run_jobs(logged_job, specs, jobs=2)
    _check(out, 5)
    assert sw.stats[-1].restarts == 1
    starts, ends = counts(log)
    assert ends == dict.fromkeys(range(5), 1)
    assert starts == {**dict.fromkeys(range(5), 1), 1: 2}


@pytest.mark.slow
def test_a_job_whose_worker_always_dies_fails_after_max_attempts(tmp_path, monkeypatch):
    log = tmp_path / "log"
    specs = _specs(log, 3)
    specs[0]["always_kill"] = True
    monkeypatch.setattr(X, "MAX_ATTEMPTS", 2)
    with pytest.raises(JobsFailed) as err:
        run_jobs(logged_job, specs, jobs=2)
    assert "died 2 times" in str(err.value) and canonical(specs[0]) in str(err.value)
    starts, ends = counts(log)
    assert starts[0] == 2 and ends == {1: 1, 2: 1}


def test_a_truncated_store_entry_is_named_and_its_job_reruns(tmp_path):
    log = tmp_path / "log"
    heard = []
    store = JobStore(tmp_path / "store", warn=heard.append)
    with sweep(store=store):
        first = run_jobs(logged_job, _specs(log, 4))
    path = store.path(store.key(logged_job, _specs(log, 4)[3]))
    path.write_bytes(path.read_bytes()[:40])
    with sweep(store=store) as sw:
        second = run_jobs(logged_job, _specs(log, 4), jobs=2)
    assert (sw.resumed, sw.ran) == (3, 1)
    assert len(heard) == 1 and str(path) in heard[0] and "damaged" in heard[0]
    assert canonical(first) == canonical(second)
    assert counts(log)[1] == {0: 1, 1: 1, 2: 1, 3: 2}
    assert json.loads(path.read_text())["result"]["i"] == 3  # the rerun replaced the damaged entry


def _sweep_cmd(store, log, n, jobs):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}", "OMP_NUM_THREADS": "1"}
    return [sys.executable, str(HERE / "sweep_jobs.py"), str(store), str(log), str(n), str(jobs)], env


@pytest.mark.slow
def test_sigkill_of_the_whole_sweep_then_a_rerun_loses_nothing_and_runs_nothing_twice(tmp_path):
    log, root, n = tmp_path / "log", tmp_path / "store", 10
    cmd, env = _sweep_cmd(root, log, n, 2)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    store = JobStore(root)
    deadline = time.monotonic() + 120
    while len(store) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the sweep's main process; its workers die with it
    proc.wait()
    time.sleep(1.0)
    size = log.stat().st_size
    time.sleep(0.8)
    assert log.stat().st_size == size, "a worker outlived the killed sweep"
    kept = len(store)
    assert 3 <= kept < n
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:4] == ["resumed", str(kept), "ran", str(n - kept)]
    assert proc.stdout.split()[-1] == str(sum(i * i for i in range(n)))
    starts, ends = counts(log)
    # Every job finished; one that finished in its worker but was killed before its entry reached the
    # store is rightly run again, so only the (at most 2) jobs in flight at the kill ran twice.
    assert set(ends) == set(range(n)) and sum(ends.values()) - n <= 2
    assert sum(starts.values()) - n <= 2


# ------------------------------------------------------------------------------------------- executors
def test_per_gpu_executor_pins_one_device_per_worker(tmp_path):
    log = tmp_path / "log"
    with sweep(gpus=("3", "5")) as sw:
        out = run_jobs(logged_job, _specs(log, 6, sleep=0.05))
    assert {r["env"] for r in out} <= {"3", "5"}
    assert sw.stats[-1].workers == 2
    pids = {}
    for line in log.read_text().splitlines():
        _, i, pid = line.split()
        pids.setdefault(pid, set())
    assert len(pids) == 2  # two worker processes shared the six jobs


@pytest.mark.slow
def test_round_robin_and_dynamic_give_the_same_results(tmp_path):
    outs = []
    for schedule in X.SCHEDULES:
        with sweep(schedule=schedule):
            outs.append(run_jobs(logged_job, _specs(tmp_path / schedule, 5), jobs=2))
    assert canonical(outs[0]) == canonical(outs[1])


@pytest.mark.slow
def test_slurm_executor_through_submitits_local_executor(tmp_path, monkeypatch):
    """The Slurm path end to end with submitit's local executor: each task writes the store, the
    results come back through it; a raising job is reported with its spec."""
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{HERE}")  # the tasks import this job module
    log, root = tmp_path / "log", tmp_path / "store"
    specs = _specs(log, 3)
    specs[2]["raise"] = True
    slurm = {"folder": str(tmp_path / "submitit"), "cluster": "local", "time_min": 5, "poll_s": 0.2}
    store = JobStore(root)
    with sweep(store=store, executor="slurm", slurm=slurm), pytest.raises(JobsFailed) as err:
        run_jobs(logged_job, specs)
    assert canonical(specs[2]) in str(err.value) and "told to fail" in str(err.value)
    specs[2].pop("raise")
    with sweep(store=store, executor="slurm", slurm=slurm) as sw:
        out = run_jobs(logged_job, specs)
    assert (sw.resumed, sw.ran) == (2, 1)
    _check(out, 3)
    assert counts(log)[1] == {0: 1, 1: 1, 2: 1}
    entry = json.loads(store.path(store.key(logged_job, specs[0])).read_text())
    assert entry["worker"].startswith("slurm")


def test_slurm_needs_a_store():
    from engine.errors import UserError

    with sweep(executor="slurm", slurm={"folder": "x", "cluster": "local"}), pytest.raises(UserError):
        run_jobs(logged_job, [{"i": 0, "log": "/dev/null"}])
