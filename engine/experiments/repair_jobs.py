"""``lca-tui repair`` at scale: the units of ``engine.hijack.repair`` (``select``: a chunk of the selection
records; ``score``: one defense at one α on a chunk of one half) as jobs of ``run_jobs``, so they go
through the sweep's job store (a finished unit is kept at once; a rerun of the same command takes it
from there) and its executor (this process, ``--jobs N`` spawned workers, ``--gpus``, ``--executor
slurm``). ``repair(..., run_units=runner(model, jobs))`` is the whole of it.

A job's spec is the unit's (``unit``, records, scheme, n, template; a score unit's defense with its
steering vector as a list, and the batch size) and the model's (``model_spec``: ``model`` as named,
``source`` where it loads from, ``device`` and ``dtype`` as asked, ``trust_remote_code``): everything
the result depends on, so the store never hands one model's units to another. A worker loads the model
of its specs once (``_model``: one model per process at a time); in this process the model the caller
``hold``s is reused, never loaded a second time. ``device``/``dtype`` ``auto`` resolve in each worker
(the same rule everywhere); name them to pin a store to one device and dtype.
"""

from __future__ import annotations

from engine.experiments.jobs import current_context, run_jobs

_HELD: dict = {}  # the caller's loaded model, by _key
_CACHE: dict = {}  # a worker's loaded model, by _key (one at a time)


def model_spec(name: str | None, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False) -> dict:
    """The model's part of every unit's spec."""
    from engine.hijack.lm import resolve_source

    display, source = resolve_source(name)
    return {"model": display, "source": source, "device": str(device or "auto"), "dtype": str(dtype or "auto"),
            "trust_remote_code": bool(trust_remote_code)}


def _key(spec: dict) -> tuple:
    return spec["source"], spec["device"], spec["dtype"], bool(spec.get("trust_remote_code"))


def hold(lm, spec: dict) -> None:
    """Units of ``spec``'s model that run in this process use ``lm`` (already loaded)."""
    _HELD.clear()
    _HELD[_key(spec)] = lm


def release() -> None:
    """Forget the held model and any model this process loaded for units."""
    _HELD.clear()
    _CACHE.clear()


def _model(spec: dict):
    key = _key(spec)
    if key in _HELD:
        return _HELD[key]
    if key not in _CACHE:
        from engine.hijack.lm import load_lm

        _CACHE.clear()  # one model per process at a time
        _CACHE[key] = load_lm(spec["model"], device=spec["device"], dtype=spec["dtype"],
                              trust_remote_code=bool(spec.get("trust_remote_code")))
    return _CACHE[key]


def _select_job(spec: dict) -> dict:
    """One selection unit (``engine.hijack.repair.selection_unit``) on the spec's model."""
    from engine.hijack.repair import selection_unit

    return selection_unit(_model(spec), spec, current_context())


def _score_job(spec: dict) -> dict:
    """One score unit (``engine.hijack.repair.score_unit``) on the spec's model."""
    from engine.hijack.repair import score_unit

    return score_unit(_model(spec), spec, current_context())


JOBS = {"select": _select_job, "score": _score_job}


def runner(model: dict, jobs: int = 1):
    """``run_units(kind, specs, ctx)`` for ``engine.hijack.repair.repair``: every unit a job of
    ``run_jobs`` (inside ``with sweep(...)``: the store and the executor), its spec the unit's and
    ``model``'s."""
    def run(kind: str, specs: list, ctx) -> list:
        return run_jobs(JOBS[kind], [{**model, **s} for s in specs], jobs=jobs, ctx=ctx)

    return run
