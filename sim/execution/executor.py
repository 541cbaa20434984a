"""Where work units run: local processes by default, a Dask cluster when one is named.

A unit is a pure function call (its random streams are keyed by patient, see `sim.model.streams`), so
its result does not depend on the executor, the number of workers or the order of completion.
Every executor runs ``fn(unit)`` for each unit and hands each result to ``on_result`` in the
calling process as it completes, with at most a few units in flight per worker (memory stays
bounded by the unit size, not the number of units).

- `LocalExecutor(workers)`: `concurrent.futures.ProcessPoolExecutor`; one worker runs in-process.
- `DaskExecutor(address)`: `dask.distributed.Client` of a running cluster, or of a
  `LocalCluster` started on this machine (loopback) when no address is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from sim.errors import InputError

__all__ = ["LocalExecutor", "DaskExecutor", "make_executor", "EXECUTORS", "add_execution_options",
           "check_execution_options", "executor_from", "Progress"]

EXECUTORS = ("local", "dask")
_CONNECT_SECONDS = 10
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+:\d{1,5}$|^[^\s/:]+:\d{1,5}$")
_IN_FLIGHT_PER_WORKER = 2
_DASK_BATCH = 8
"""Units per Dask task at most. A task costs the scheduler, the client and the workers' Dask
threads CPU on the cores the workers share: on a LocalCluster of two, the six-policy PSA took
134.9 s of CPU one unit a task (865,000 patient-lives a second, 80% of the local pool's), 117.5 s
eight units a task (992,000 a second, 92%), against 108.8 s with the local pool. A run keeps at
least 8 tasks a worker, for the balance."""


class LocalExecutor:
    """Local processes (or this process when `workers` is 1)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def run(self, fn: Callable, units: Iterable, on_result: Callable) -> None:
        units = iter(units)
        if self.workers == 1:
            for unit in units:
                on_result(fn(unit))
            return
        pool = ProcessPoolExecutor(self.workers, initializer=_worker_start,
                                   initargs=(os.getpid(),))
        try:
            pending = set()
            for unit in units:
                pending.add(pool.submit(fn, unit))
                if len(pending) >= _IN_FLIGHT_PER_WORKER * self.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        on_result(future.result())
            for future in _completed(pending):
                on_result(future.result())
        except BaseException:   # an error, Ctrl-C or SIGTERM: the workers end now, not later
            _terminate(pool)
            raise
        pool.shutdown()

    def close(self) -> None:
        pass


def _ignore_interrupts():
    """Ignore SIGINT for now (main thread only); the handler it replaced, or None."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread: signals are not ours to set
        return None


def _worker_start(parent: int) -> None:
    """In each worker process: Ctrl-C is the parent's to handle (it ends the workers), SIGTERM
    ends the worker, and so does the parent's death (Linux: PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:   # the parent died before the line above
        os._exit(1)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool at once: pending units cancelled, running workers terminated."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _completed(futures):
    while futures:
        done, futures = wait(futures, return_when=FIRST_COMPLETED)
        yield from done


class DaskExecutor:
    """A dask.distributed cluster: a running one at `address`, or a LocalCluster on loopback."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        import dask  # noqa: PLC0415 - only when asked for
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415

        self._cluster = None
        if address is None:
            # The cluster's processes are started with Ctrl-C ignored (they inherit it): the
            # command handles it and closes the cluster, so no process prints its own traceback.
            previous = _ignore_interrupts()
            try:
                # Dask's workers trim the heap whenever 64 KB are free (MALLOC_TRIM_THRESHOLD_):
                # a unit allocates and frees arrays of megabytes, and trimming each time cost
                # about 7% of the throughput (issue 28); glibc's own threshold is kept instead.
                with dask.config.set(
                        {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                                 threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address=None,
                                                 silence_logs=logging.ERROR)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
            address = self._cluster.scheduler_address
        try:
            self.client = Client(address, timeout=_CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            if self._cluster is not None:
                self._cluster.close()
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            raise InputError(f"--scheduler: cannot reach a Dask scheduler at {address} "
                             f"within {_CONNECT_SECONDS} s ({reason})") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, fn: Callable, units: Iterable, on_result: Callable) -> None:
        from dask.distributed import as_completed  # noqa: PLC0415

        units = list(units)
        size = max(1, min(_DASK_BATCH, len(units) // (8 * self.workers)))
        batches = iter([units[i:i + size] for i in range(0, len(units), size)])
        limit = _IN_FLIGHT_PER_WORKER * self.workers
        first = [self.client.submit(_batch, fn, batch, pure=False)
                 for _, batch in zip(range(limit), batches)]
        completed = as_completed(first)
        for future in completed:
            for result in future.result():
                on_result(result)
            future.release()
            following = next(batches, None)
            if following is not None:
                completed.add(self.client.submit(_batch, fn, following, pure=False))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _batch(fn: Callable, units: list) -> list:
    """A Dask task: `fn` of a few units, in order."""
    return [fn(unit) for unit in units]


def make_executor(workers: int | None = None, executor: str = "local",
                  scheduler: str | None = None):
    """The executor the options ask for: `--scheduler` wins, then `--executor`."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if executor == "dask":
        return DaskExecutor(None, workers)
    return LocalExecutor(workers)


def add_execution_options(parser: argparse.ArgumentParser, resume: bool = True) -> None:
    """The options of every command that runs many patients; the results do not depend on them."""
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: all cores)")
    parser.add_argument("--executor", default="local", help="local (processes) or dask "
                        "(a dask.distributed LocalCluster on this machine)")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, "
                        "e.g. tcp://10.0.0.5:8786; the output directory must be shared (default: "
                        "none, the run stays on this machine)")
    if resume:
        parser.add_argument("--resume", action="store_true", help="finish an interrupted run of "
                            "the same command: only missing units are computed")


def check_execution_options(args: argparse.Namespace) -> None:
    """The execution options checked (nothing started): one line for the first that is wrong."""
    if args.workers is not None and args.workers <= 0:
        raise InputError(f"--workers: must be a positive number of processes (got {args.workers})")
    if args.executor not in EXECUTORS:
        raise InputError(f"--executor: must be one of {', '.join(EXECUTORS)} (got {args.executor!r})")
    if args.scheduler is not None and not _ADDRESS.match(args.scheduler):
        raise InputError(f"--scheduler: must be a scheduler address with its port, e.g. "
                         f"tcp://10.0.0.5:8786 (got {args.scheduler!r})")


def executor_from(args: argparse.Namespace):
    """The executor the execution options name, after checking them."""
    check_execution_options(args)
    return make_executor(args.workers, args.executor, args.scheduler)


class Progress:
    """Progress of a run of units. `show`: False, nothing at all; True or None, a bar on a
    terminal (units, patients per second, time left) and otherwise plain lines on stderr, at
    most one per tenth of the units and per `LINE_SECONDS` (whichever is rarer) and one at the
    end. `update(count)` after each unit of `count` patients (or of what `nouns`, singular and
    plural, name: a comparison counts patient-lives)."""

    LINE_SECONDS = 30.0

    def __init__(self, total_patients: int, total_units: int, show: bool | None = None,
                 done_patients: int = 0, done_units: int = 0,
                 nouns: tuple[str, str] = ("patient", "patients")):
        self.total, self.units, self.nouns = total_patients, total_units, nouns
        self.done, self.units_done, self.fresh = done_patients, done_units, 0
        self.started = time.perf_counter()
        self.quiet = show is False
        self.bar = None
        self.last_line, self.last_units = self.started, done_units
        if not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm  # noqa: PLC0415 - only on a terminal
            self.bar = tqdm(total=total_patients, initial=done_patients, unit=nouns[0],
                            unit_scale=True, leave=False)

    def update(self, count: int) -> None:
        self.done += count
        self.fresh += count
        self.units_done += 1
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(units=f"{self.units_done}/{self.units}")
            return
        now = time.perf_counter()
        last = self.units_done >= self.units
        due = (self.units_done - self.last_units >= max(1, self.units / 10)
               and now - self.last_line >= self.LINE_SECONDS)
        if self.units > 1 and (due or last):
            self.last_line, self.last_units = now, self.units_done
            rate = self.fresh / max(now - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate else float("nan")
            plural = self.nouns[1]
            print(f"crlm-sim: unit {self.units_done}/{self.units}, {self.done:,} {plural}, "
                  f"{rate:,.0f} {plural}/s, {left:,.0f} s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
