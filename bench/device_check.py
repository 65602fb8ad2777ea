"""The prepared GPU check (issue 21), run by ``bench/device_check.sh``: the CUDA and bf16 paths of the
probe, the ES sweep, the trainer and the causal trace against CPU fp32, the per-GPU
executor with two workers when two GPUs are present, each with its stated tolerance; one JSON file
(``device_check.json``) and a line per check under the output folder.

Tolerances (against CPU fp32 on the same inputs):
- probe, fp32 on the device: |log p - log p_cpu| <= 1e-3 for every tracked target, same top-1 token;
- probe, bf16: |log p - log p_cpu| <= 0.25 (bf16 keeps 8 bits of mantissa through every layer);
- ES sweep n = 0..3: fp32: |ES - ES_cpu| <= 1/records (one record on a near-tie may flip); bf16: <= 0.1;
- trainer (fp32 only; it has no bf16 path), same config and seed: the Bayes accuracy is equal and
  |accuracy - accuracy_cpu| <= 0.05 (the device's random stream draws other training batches);
- per-GPU executor: the value-matrix tiny grid's verdict equals the in-process run's, rows within 0.05.

``--dry`` runs everything on the CPU in place of the device (bf16 on the CPU, a tiny random model,
the per-GPU executor with CUDA_VISIBLE_DEVICES="" for both workers): it keeps the script working in CI
and says nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["The Eiffel Tower is located in the city of", "Do not think of Chicago. The Eiffel Tower is in",
           "The mother tongue of Danielle Darrieux is"]
TARGETS = [" Paris", " Chicago", " French"]
TOL = {"probe_fp32": 1e-3, "probe_bf16": 0.25, "es_bf16": 0.1, "train_acc": 0.05, "executor_rows": 0.05}


def _check(results, name, ok, **info):
    results.append({"check": name, "pass": bool(ok), **info})
    print(f"device_check: {'PASS' if ok else 'FAIL'} {name} {json.dumps(info, default=str)}", flush=True)


def check_probe(results, model, device, dtype):
    from engine.hijack.lm import load_lm
    from engine.hijack.probe import Prober

    ref = load_lm(model, device="cpu", dtype="float32")
    dev = load_lm(model, device=device, dtype=dtype)
    worst, same_top = 0.0, True
    for prompt in PROMPTS:
        a = Prober(ref).probe(prompt, TARGETS, top_k=1)
        b = Prober(dev).probe(prompt, TARGETS, top_k=1)
        same_top &= a.top_k[0].token == b.top_k[0].token
        for ta, tb in zip(a.targets, b.targets):
            worst = max(worst, abs(math.log(max(ta.prob, 1e-30)) - math.log(max(tb.prob, 1e-30))))
    tol = TOL["probe_bf16" if "16" in dtype else "probe_fp32"]
    ok = worst <= tol and (same_top or "16" in dtype)
    _check(results, f"probe {device} {dtype}", ok, max_abs_dlogp=worst, tolerance=tol, same_top1=same_top)
    return ref, dev


def check_es(results, ref, dev, dtype, limit):
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import efficacy_curve

    records = load_counterfact("builtin", limit=limit, seed=0)
    a = efficacy_curve(ref, records, "not-think", 3, batch_size=8)
    b = efficacy_curve(dev, records, "not-think", 3, batch_size=8)
    worst = max(abs(p.es - q.es) for p, q in zip(a.curve, b.curve))
    tol = TOL["es_bf16"] if "16" in dtype else 1.0 / len(records) + 1e-12
    _check(results, f"es-sweep {dev.device} {dtype}", worst <= tol, max_abs_des=worst, tolerance=tol,
           records=len(records), es_cpu=[p.es for p in a.curve], es_device=[p.es for p in b.curve])


def check_trainer(results, device, steps):
    from engine.experiments.training import lca_config
    from engine.lca.trainer import Trainer

    out = {}
    for where in ("cpu", device):
        cfg = lca_config({"m": 5, "L": 32, "steps": steps, "seed": 0, "device": where, "batch_size": 128})
        tr = Trainer(cfg)
        tr.run()
        ev = tr.evaluate()
        out[where] = (float(ev.accuracy), float(ev.bayes_accuracy))
    (acc_c, bayes_c), (acc_d, bayes_d) = out["cpu"], out[device]
    ok = abs(acc_c - acc_d) <= TOL["train_acc"] and (bayes_c == bayes_d or (math.isnan(bayes_c) and math.isnan(bayes_d)))
    _check(results, f"trainer {device} fp32", ok, accuracy_cpu=acc_c, accuracy_device=acc_d,
           bayes_cpu=bayes_c, bayes_device=bayes_d, tolerance=TOL["train_acc"], steps=steps)


def check_trace(results, ref, dev):
    from engine.hijack import device_check  # the causal trace's device check (issue 19)

    diff, tol = device_check.device_check(ref, dev)
    _check(results, "trace", diff <= tol, max_abs_diff=diff, tolerance=tol)


def check_executor(results, gpus):
    from engine import experiments as E
    from engine.experiments.jobs import sweep

    ref = E.run("value-matrix", "tiny").to_dict()
    with sweep(gpus=tuple(gpus)) as sw:
        got = E.run("value-matrix", "tiny").to_dict()
    worst = 0.0
    for ra, rb in zip(ref["rows"], got["rows"]):
        for k, v in ra.items():
            w = rb.get(k)
            if isinstance(v, (int, float)) and isinstance(w, (int, float)) and not isinstance(v, bool):
                if not (math.isnan(v) and math.isnan(w)):
                    worst = max(worst, abs(v - w))
    ok = got["verdict"] == ref["verdict"] and worst <= TOL["executor_rows"]
    _check(results, f"per-gpu executor {','.join(g or '(none)' for g in gpus)}", ok, workers=sw.stats[-1].workers,
           verdict=got["verdict"], verdict_cpu=ref["verdict"], max_abs_row_diff=worst, tolerance=TOL["executor_rows"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--dry", action="store_true", help="CPU in place of the GPU (CI)")
    ap.add_argument("--model", default=None, help="model for the probe / ES checks (default smollm2-135m; "
                                                  "--dry: a tiny random model made in the output folder)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    results: list[dict] = []
    t0 = time.perf_counter()
    if args.dry:
        device, gpus = "cpu", ["", ""]
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import make_tiny_lm

            model = str(make_tiny_lm(out / "tiny-llama", "llama"))
        limit, steps = 8, 60
    else:
        if not torch.cuda.is_available():
            print("device_check: no CUDA device; run with --dry for the CPU rehearsal", file=sys.stderr)
            return 2
        device, model, limit, steps = "cuda", args.model or "smollm2-135m", 64, 400
        gpus = [str(i) for i in range(torch.cuda.device_count())][:2]
    for dtype in ("float32", "bfloat16"):
        ref, dev = check_probe(results, model, device, dtype)
        check_es(results, ref, dev, dtype, limit)
        if dtype == "float32":
            check_trace(results, ref, dev)
        del ref, dev
    check_trainer(results, device, steps)
    if len(gpus) >= 2:
        check_executor(results, gpus)
    else:
        _check(results, "per-gpu executor", True, skipped=f"{len(gpus)} GPU(s): needs two")
    sys.path.insert(0, str(ROOT / "bench"))
    from app_harness import machine

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    summary = {"dry": args.dry, "device": device, "gpu": gpu, **machine(" ".join(["bench/device_check.py", *sys.argv[1:]])),
               "seconds": round(time.perf_counter() - t0, 1),
               "tolerances": TOL, "checks": results, "passed": all(r["pass"] for r in results)}
    from engine.atomic import atomic_write_json

    atomic_write_json(out / "device_check.json", summary)
    print(f"device_check: {'all passed' if summary['passed'] else 'FAILED'} ({summary['seconds']} s) -> "
          f"{out / 'device_check.json'}", flush=True)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
