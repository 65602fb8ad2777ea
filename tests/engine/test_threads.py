"""Thread policy: flag > LCA_TUI_THREADS > free cores; plans that never oversubscribe; the governor."""

import threading

import pytest
import torch

from engine import threads
from engine.errors import ConfigError


@pytest.fixture(autouse=True)
def _keep_torch_threads(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _machine(monkeypatch, cores, busy):
    monkeypatch.setattr(threads, "_cores", lambda: cores)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda interval=0.25: busy)


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 0.0, 2), (2, 0.3, 2), (2, 1.0, 1), (2, 2.0, 1), (2, 5.0, 1), (8, 3.0, 5), (1, 0.0, 1)])
def test_auto_takes_the_cores_other_processes_leave_free(monkeypatch, cores, busy, expected):
    _machine(monkeypatch, cores, busy)
    choice = threads.choose()
    assert choice.source == "auto" and choice.threads == expected and choice.cores == cores


def test_flag_beats_env_beats_auto(monkeypatch):
    _machine(monkeypatch, 2, 2.0)
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert threads.choose().threads == 3 and threads.choose().source == "env"
    assert threads.choose(5).threads == 5 and threads.choose("5").source == "flag"


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", ""])
def test_bad_counts_are_one_clear_error(monkeypatch, bad):
    with pytest.raises(ConfigError, match="--threads must be a positive integer"):
        threads.choose(bad)
    if bad:
        monkeypatch.setenv(threads.ENV_VAR, bad)
        with pytest.raises(ConfigError, match="LCA_TUI_THREADS must be a positive integer"):
            threads.choose()


@pytest.mark.parametrize("total, workers, expected", [(2, 2, [1, 1]), (4, 2, [2, 2]), (5, 2, [3, 2]),
                                                      (1, 2, [1, 1]), (2, 1, [2]), (3, 3, [1, 1, 1])])
def test_plan_splits_without_oversubscribing(monkeypatch, total, workers, expected):
    _machine(monkeypatch, total, 0.0)
    p = threads.plan(workers)
    assert p == expected
    assert sum(p) <= max(total, workers)


def test_apply_is_per_thread():
    torch.set_num_threads(2)
    seen = []

    def worker():
        threads.apply(1)
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1] and torch.get_num_threads() == 2


def test_busy_elsewhere_is_a_core_count():
    busy = threads.busy_elsewhere(0.05)
    assert 0.0 <= busy <= len(threads.allowed_cpus()) + 0.5


def test_governor_follows_the_load_unless_fixed(monkeypatch):
    _machine(monkeypatch, 2, 0.0)
    load = {"busy": 0.0}
    monkeypatch.setattr(threads._LoadProbe, "busy_elsewhere", lambda self: load["busy"])
    torch.set_num_threads(1)
    gov = threads.Governor(period_s=0.0)
    load["busy"] = 0.0
    assert gov.threads == 2 and torch.get_num_threads() == 1  # applied by the ticking thread
    assert gov.tick() == 2 and torch.get_num_threads() == 2
    load["busy"] = 1.0                      # another process starts spinning on one core
    assert gov.tick() == 1 and torch.get_num_threads() == 1 and gov.changes == 1
    load["busy"] = 0.0
    assert gov.tick() == 2
    shared = threads.Governor(period_s=0.0, share=2)   # the app: training thread + model thread
    seen = []
    worker = threading.Thread(target=lambda: seen.append((shared.tick(), torch.get_num_threads())))
    worker.start()
    worker.join()
    assert seen == [(1, 1)] and torch.get_num_threads() == 2
    fixed = threads.Governor(requested=2, period_s=0.0)
    load["busy"] = 2.0
    assert fixed.tick() == 2 and fixed.fixed


def test_governor_share_is_read_at_every_tick_and_splits_a_fixed_count_too(monkeypatch):
    """The app's training thread shares the cores with the model thread only while that is busy."""
    _machine(monkeypatch, 2, 0.0)
    monkeypatch.setattr(threads._LoadProbe, "busy_elsewhere", lambda self: 0.0)
    torch.set_num_threads(1)
    model_busy = {"v": False}
    gov = threads.Governor(period_s=3600.0, share=lambda: 1 + model_busy["v"])
    assert gov.tick() == 2 and torch.get_num_threads() == 2      # idle model thread: all cores
    model_busy["v"] = True
    assert gov.tick() == 1 and torch.get_num_threads() == 1      # at once, not after period_s
    model_busy["v"] = False
    assert gov.tick() == 2 and gov.changes == 2
    fixed = threads.Governor(requested=2, period_s=0.0, share=2)   # --threads 2 between two workers
    assert fixed.tick() == 1 and fixed.fixed
