"""CPU threads of a process that runs torch: call `configure_threads` once, before the heavy work.

Why (``benchmarks/bench_model.py --compare``, 2-core CPU, PointNetFlow batch-1 inference, median):
with torch's defaults it takes 3.5 ms on a quiet machine, but 107 ms when numpy does matrix work
in the same process between calls (OpenBLAS's worker threads spin for about 0.1 s after each call
while torch's OpenMP threads wait for a core), and 200-260 ms beside other busy processes (torch's
libgomp threads spin-wait at every parallel region for a thread that was preempted). With passive
OpenMP waiting and one BLAS thread it takes 4.4, 5.7 and 6-34 ms; with one torch thread 7.0, 6.5
and 23-59 ms.

``configure_threads(threads)``:

- torch's intra-op threads: ``threads``, or with ``None``/``0`` the CPUs this process may use
  (`available_cores`: its CPU affinity, and a container's CPU quota where one is set), never more
  (a larger request is clamped, with a warning; a negative one is a ``ValueError``);
- ``OMP_WAIT_POLICY=PASSIVE`` for torch's OpenMP threads, unless the environment already sets
  it; OpenMP reads it when torch is first imported, so it applies only when this runs before
  ``import torch`` (``wm4d`` calls it before it imports a job; a script can set the variable);
- every BLAS pool (OpenBLAS, MKL, BLIS of numpy/scipy) limited to one thread: those already
  loaded through ``threadpoolctl``, those loaded later through ``OPENBLAS_NUM_THREADS=1``
  (an ``OPENBLAS_NUM_THREADS`` already in the environment is left to rule instead).

The environment settings are made once per process (child processes inherit them); the torch
thread count is set on every call, so a later call may change it. The hydra configs of the jobs
that run torch have a ``threads`` key for it (``null``: the default above).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

_environment_set = False


def _cgroup_cpu_limit() -> float | None:
    """CPUs granted by a cgroup quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), or None without a quota."""
    try:
        v2 = Path("/sys/fs/cgroup/cpu.max")
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        if v1.exists():
            quota = int(v1.read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def available_cores() -> int:
    """CPUs this process may use: its affinity mask (``os.sched_getaffinity``), capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _set_environment() -> None:
    """Passive OpenMP waiting and single-threaded BLAS (see the module docstring); once per process."""
    global _environment_set
    if _environment_set:
        return
    _environment_set = True
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "OPENBLAS_NUM_THREADS" in os.environ:  # the user's choice, read by each BLAS library as it loads
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # the pools already loaded (numpy's, scipy's)


def configure_threads(threads: int | None = None) -> int:
    """Set this process's CPU threads for torch work (see the module docstring) and return torch's thread count.

    ``threads``: torch's intra-op threads; ``None`` or ``0``: `available_cores`. More than
    `available_cores` is clamped to it with a ``RuntimeWarning``; a negative or non-integer value
    raises ``ValueError``.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ValueError(f"threads must be a whole number of threads, 0 or null (all available cores), "
                         f"got {threads!r}")
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 1, or 0/null for all available cores, got {threads}")
    cores = available_cores()
    count = cores if not threads else threads
    if count > cores:
        warnings.warn(f"threads={threads} exceeds the {cores} CPUs this process may use; using {cores} "
                      f"(more threads than cores makes every parallel region wait for a preempted thread)",
                      RuntimeWarning, stacklevel=2)
        count = cores
    _set_environment()  # before torch loads its OpenMP runtime (if it has not yet), which reads it once
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
