"""Worker processes for a local sweep: one run at a time each, and none outlives its sweep.

Why not `concurrent.futures.ProcessPoolExecutor`: it queues runs ahead in its workers (a
Ctrl-C then still trains them), and its workers survive a killed parent, running the
rest of the queue and then waiting forever. Here:

- the parent hands a worker its next run only when the worker is free, so after a stop
  no new run starts;
- a worker dies with its parent: on Linux the kernel kills it when the parent dies
  (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), and everywhere a thread checks once a second that
  its parent is still the one that started it, and an idle worker exits on its pipe's EOF;
- Ctrl-C (SIGINT to the process group, or to the parent alone, which passes it on) ends
  each running run as "interrupted" (its finished epochs kept); a second Ctrl-C kills the
  workers at once;
- a worker that dies mid-run (killed, out of memory) reports its run "failed" and is
  replaced.

Workers are spawned (TensorFlow and fork do not mix) and kept for the whole sweep, so a
worker's next run of the same shape reuses its compiled model (`keras_bnreg.compiled`);
the parent prefers giving a worker a run of the shape it ran last.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing import connection, get_context

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 60.0  # after one Ctrl-C: how long running runs get to stop cleanly


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid` (its parent) ends, however it ends."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # Linux's prctl, only where it exists

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # the polling thread below still ends us
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _interrupt_once(signum, frame):
    # Only the first SIGINT interrupts the run (the terminal's and the parent's may both
    # arrive); later ones must not cut the interrupted run's own summary short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def worker_main(conn, parent_pid, function) -> None:
    """A worker's loop: receive an argument, send back `function(argument)`, until EOF."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            argument = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if argument is None:
            return
        try:
            result = function(argument)
        except KeyboardInterrupt:  # stopped outside training (loading data, building)
            result = KeyboardInterrupt()
        try:
            conn.send(result)
        except (OSError, KeyboardInterrupt):
            return


class _Worker:
    def __init__(self, context, function):
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=worker_main, args=(child_conn, os.getpid(), function), daemon=True
        )
        self.process.start()
        child_conn.close()
        self.task = None  # the argument it is running
        self.key = None  # the group key of its last task

    def kill(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class Stopped(KeyboardInterrupt):
    """The pool stopped on Ctrl-C; `results` holds what finished, `unstarted` the rest."""

    def __init__(self, results, unstarted):
        super().__init__()
        self.results = results
        self.unstarted = unstarted


def run_all(tasks, jobs, function, *, key=lambda task: None, on_lost=None, on_result=None):
    """Return `[function(task) ...]` in finishing order, `jobs` worker processes at a time.

    The first Ctrl-C (SIGINT) starts no new task and interrupts the running ones (they end
    as their function handles KeyboardInterrupt); a second one kills the workers at once.

    Args:
        tasks: picklable arguments of `function`.
        jobs: worker processes.
        function: a module-level function (spawned workers import it by name).
        key: tasks with equal keys preferably go to the worker that ran that key last.
        on_lost: `on_lost(task, exitcode)` -> the result of a task whose worker died.
        on_result: called with each result as it arrives (progress).

    Raises:
        Stopped: after a Ctrl-C or an "interrupted" result, once the running tasks ended
            (or at once on a second Ctrl-C).
    """
    context = get_context("spawn")
    pending, workers, results = list(tasks), [], []
    keys = {id(task): key(task) for task in pending}  # once: every task lives until the end

    def key_of(task):
        return keys[id(task)]

    state = {"stopping": False, "deadline": None}

    def stop():
        if not state["stopping"]:
            state["stopping"] = True
            state["deadline"] = time.monotonic() + STOP_GRACE_SECONDS
            _interrupt([w for w in workers if w.task is not None])

    def on_sigint(signum, frame):
        if state["stopping"]:
            raise KeyboardInterrupt  # the second Ctrl-C
        stop()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main_thread else None
    try:
        while True:
            if not state["stopping"]:
                _dispatch(context, workers, pending, jobs, function, key_of)
            busy = [w for w in workers if w.task is not None]
            if not busy:
                break
            if state["stopping"] and time.monotonic() > state["deadline"]:
                raise KeyboardInterrupt
            ready = connection.wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0
            )
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):  # the worker died mid-task
                    worker.process.join(timeout=5)
                    result = on_lost(worker.task, worker.process.exitcode) if on_lost else None
                    worker.task = None
                    worker.kill()
                    workers.remove(worker)
                    if state["stopping"]:
                        continue  # killed by the Ctrl-C that reached it too
                worker.task = None
                if isinstance(result, KeyboardInterrupt):
                    stop()
                    continue
                if getattr(result, "status", None) == "interrupted":
                    stop()  # the terminal's Ctrl-C reached the worker first
                results.append(result)
                if on_result is not None:
                    on_result(result)
        if state["stopping"]:
            raise Stopped(results, pending)
        return results
    except KeyboardInterrupt as error:
        if isinstance(error, Stopped):
            raise
        for worker in workers:  # a second Ctrl-C: at once
            worker.kill()
        raise Stopped(results, pending) from None
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        _close(workers)


def _dispatch(context, workers, pending, jobs, function, key):
    for worker in [w for w in workers if w.task is None]:
        if not pending:
            return
        _send(worker, _take(pending, worker.key, _held_keys(workers), key), key)
    while pending and len(workers) < jobs:
        worker = _Worker(context, function)
        workers.append(worker)
        _send(worker, _take(pending, None, _held_keys(workers), key), key)


def _send(worker, task, key):
    worker.task, worker.key = task, key(task)
    worker.conn.send(task)


def _held_keys(workers):
    return {worker.key for worker in workers if worker.task is not None}


def _take(pending, last_key, held, key):
    """The next task for a worker that last ran `last_key`: one of the same key (its
    compiled model is reused); else the first of a key no busy worker holds (a group is
    then compiled by one worker, not by each); else the first left."""
    keys = [key(task) for task in pending]
    if last_key is not None and last_key in keys:
        return pending.pop(keys.index(last_key))
    free = [index for index, task_key in enumerate(keys) if task_key not in held]
    return pending.pop(free[0] if free else 0)


def _interrupt(workers):
    for worker in workers:
        try:
            os.kill(worker.process.pid, signal.SIGINT)
        except OSError:
            pass


def _close(workers):
    """Idle workers are told to exit; busy ones (an error or SIGTERM here) are killed."""
    for worker in workers:
        if worker.task is not None:
            worker.kill()
        elif worker.process.is_alive():
            try:
                worker.conn.send(None)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        worker.kill()
