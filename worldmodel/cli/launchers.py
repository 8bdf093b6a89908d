"""Where ``wm4d collect`` runs its episodes: in this process, in a local process pool, or on a Ray cluster.

`run_in_order` runs one function over a list of jobs and yields the results in the jobs' order, whatever order
they finish in, so a store written from it is the same for every launcher and worker count (each job carries
its own seed). ``launcher="local"``: ``workers`` = 1 runs in this process, more in a pool of spawned processes.
``launcher="ray"``: each job is a Ray task (one CPU); without ``ray_address`` a local Ray cluster of ``workers``
CPUs is started for the run and shut down after it, with an address (``"auto"``, ``"ray://host:10001"``) the jobs
go to that existing cluster (worldmodel4d must be installed on its nodes); at most ``workers`` jobs run at once.
A worker process that dies mid-job (killed, out of memory, a lost node) loses only that job, which Ray runs again
(up to ``RAY_MAX_RETRIES`` times); an error raised by the job itself is not retried and ends the run.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from typing import Any

LAUNCHERS = ("local", "ray")
RAY_MAX_RETRIES = 3  # reruns of a job whose worker died
HELD_PER_WORKER = 4  # Ray jobs running or finished but waiting for an earlier one, per worker (bounds memory)


def check_launcher(launcher: Any, ray_address: Any) -> None:
    """ValueError naming what is allowed for a bad ``launcher`` or a ``ray_address`` without the Ray launcher;
    ImportError with the install command when Ray is asked for but missing."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if ray_address is not None and launcher != "ray":
        raise ValueError(f"ray_address={ray_address!r} needs launcher=ray")
    if ray_address is not None and not (isinstance(ray_address, str) and ray_address):
        raise ValueError(f"ray_address must be 'auto' or a cluster address such as 'ray://host:10001', "
                         f"got {ray_address!r}")
    if launcher == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise ImportError("launcher=ray needs Ray: .venv/bin/pip install 'ray>=2.9' (make test installs it)") from e


def run_in_order(fn: Callable[..., Any], jobs: list[tuple], launcher: str = "local", workers: int = 1,
                 ray_address: str | None = None) -> Iterator[Any]:
    """``fn(*job)`` for every job, yielded in the order of ``jobs`` (see the module docstring)."""
    check_launcher(launcher, ray_address)
    if launcher == "ray":
        yield from _ray_in_order(fn, jobs, workers, ray_address)
    elif workers > 1 and len(jobs) > 1:
        pool = mp.get_context("spawn").Pool(workers)
        try:
            yield from pool.imap(_call, [(fn, job) for job in jobs])
        finally:
            pool.terminate()
    else:
        for job in jobs:
            yield fn(*job)


def _call(args: tuple) -> Any:
    fn, job = args
    return fn(*job)


def _ray_in_order(fn: Callable[..., Any], jobs: list[tuple], workers: int, address: str | None) -> Iterator[Any]:
    import ray

    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        ray.init(address=address, **({"num_cpus": workers} if address is None else {}), **options)
    remote = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(fn)
    pending: dict[Any, int] = {}  # running job -> its index
    finished: dict[int, Any] = {}  # results waiting for an earlier job
    submitted = yielded = 0
    workers = max(1, workers)
    try:
        while yielded < len(jobs):
            while submitted < len(jobs) and len(pending) < workers \
                    and len(pending) + len(finished) < HELD_PER_WORKER * workers:
                pending[remote.remote(*jobs[submitted])] = submitted
                submitted += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                finished[pending.pop(ref)] = ray.get(ref)
            while yielded in finished:
                yield finished.pop(yielded)
                yielded += 1
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
