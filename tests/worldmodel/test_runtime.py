"""configure_threads: torch threads = the CPUs this process may use by default, explicit counts respected,
bad values refused, passive OpenMP waiting and one BLAS thread (issue 18 item 8). Each case runs in a fresh
process: the settings are per process and must not leak into the test session."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from worldmodel.runtime import available_cores

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "worldmodel", "cli", "conf")
SCRUBBED = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")}


def _run(code: str, cpus: set[int] | None = None) -> dict:
    """Run ``code`` (which prints one JSON line last) in a fresh interpreter, optionally pinned to ``cpus``."""
    prefix = f"import os; os.sched_setaffinity(0, {sorted(cpus)!r})\n" if cpus else ""
    out = subprocess.run([sys.executable, "-c", prefix + textwrap.dedent(code)], env=SCRUBBED, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_is_the_affinity_count_with_passive_waiting_and_one_blas_thread():
    r = _run("""
        import json, os
        import numpy  # a BLAS pool loaded before the call is limited too
        from worldmodel.runtime import available_cores, configure_threads
        n = configure_threads(None)
        import torch
        from threadpoolctl import threadpool_info
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        print(json.dumps({"n": n, "torch": torch.get_num_threads(), "cores": available_cores(),
                          "affinity": len(os.sched_getaffinity(0)), "wait": os.environ.get("OMP_WAIT_POLICY"),
                          "blas": blas, "zero": configure_threads(0)}))
    """)
    assert r["n"] == r["torch"] == r["cores"] == r["zero"] and 1 <= r["cores"] <= r["affinity"]
    assert r["wait"] == "PASSIVE" and r["blas"] and set(r["blas"]) == {1}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs and sched_setaffinity")
def test_a_narrower_affinity_means_fewer_threads_and_larger_requests_are_clamped():
    one_cpu = {min(os.sched_getaffinity(0))}
    r = _run("""
        import json, warnings
        from worldmodel.runtime import configure_threads
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            many = configure_threads(64)
        import torch
        print(json.dumps({"default": configure_threads(), "many": many, "torch": torch.get_num_threads(),
                          "warning": str(caught[0].message) if caught else ""}))
    """, cpus=one_cpu)
    assert r == {"default": 1, "many": 1, "torch": 1, "warning": r["warning"]}
    assert "threads=64 exceeds the 1 CPUs" in r["warning"]


def test_an_explicit_count_is_respected_and_can_change_and_the_environment_is_not_overridden():
    cores = available_cores()
    r = _run("""
        import json, os
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's own choices stay
        os.environ["OPENBLAS_NUM_THREADS"] = "2"
        import numpy
        from threadpoolctl import threadpool_info
        from worldmodel.runtime import configure_threads
        import torch
        blas = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        before = blas()
        first = configure_threads(1)
        t1 = torch.get_num_threads()
        second = configure_threads(None)
        print(json.dumps({"first": first, "t1": t1, "second": second, "t2": torch.get_num_threads(),
                          "wait": os.environ["OMP_WAIT_POLICY"], "blas_kept": blas() == before}))
    """)
    assert r == {"first": 1, "t1": 1, "second": cores, "t2": cores, "wait": "ACTIVE", "blas_kept": True}


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_values_are_refused_with_a_clear_message(bad):
    from worldmodel.runtime import configure_threads

    with pytest.raises(ValueError, match=r"threads must be") as err:
        configure_threads(bad)
    assert repr(bad) in str(err.value) or str(bad) in str(err.value)


def test_every_torch_job_config_has_a_threads_key():
    for job in ("train", "eval", "eval_model", "demo", "reproduce", "collect"):
        with open(os.path.join(CONF, f"{job}.yaml")) as f:
            cfg = yaml.safe_load(f)
        assert "threads" in cfg and cfg["threads"] is None, job
