"""Running a function per partition: values, failures, process pools."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from manymodels.parallel import effective_workers, run_partitions


def square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


def test_effective_workers():
    assert effective_workers(0, 100) == (os.cpu_count() or 1)
    assert effective_workers(8, 3) == 3
    assert effective_workers(1, 0) == 1


def test_in_process_run_keeps_order_and_reports_failures():
    out = run_partitions(square_or_fail, {"a": (3,), "b": (-1,), "c": (2,)}, workers=1)
    assert list(out) == ["a", "b", "c"]
    assert out["a"].ok and out["a"].value == 9 and out["c"].value == 4
    assert not out["b"].ok
    assert out["b"].error == "ValueError: negative: -1"
    assert "Traceback" in out["b"].traceback
    assert out["a"].seconds >= 0


def test_process_pool_runs_in_other_processes_and_isolates_failures():
    out = run_partitions(square_or_fail, {"a": (3,), "b": (-2,)}, workers=2)
    assert out["a"].value == 9 and not out["b"].ok
    pids = run_partitions(pid_of, {"x": (0,), "y": (0,)}, workers=2)
    assert all(o.value != os.getpid() for o in pids.values())


def die_on(x: int, how: str) -> int:
    """``x * 10``, unless ``how`` says to kill this very worker process."""
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "exit":  # what the kernel's out-of-memory killer leaves: no exception, no cleanup
        os._exit(137)
    return x * 10


def test_a_worker_that_dies_fails_only_its_own_partition():
    tasks = {
        "a": (1, ""),
        "killed": (2, "sigkill"),
        "c": (3, ""),
        "out-of-memory": (4, "exit"),
        "e": (5, ""),
        "f": (6, ""),
    }
    out = run_partitions(die_on, tasks, workers=2)
    assert list(out) == list(tasks)
    assert {k: o.value for k, o in out.items() if o.ok} == {"a": 10, "c": 30, "e": 50, "f": 60}
    for key in ("killed", "out-of-memory"):
        assert not out[key].ok
        assert "worker process died" in out[key].error


def wait_for(path: str, touch: str) -> str:
    """Touch ``touch`` (when given), then wait (at most 60 s) for ``path`` to exist."""
    if touch:
        Path(touch).touch()
    deadline = time.monotonic() + 60
    while path and not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)
    return path


def test_on_done_sees_each_outcome_while_the_other_tasks_still_run(tmp_path):
    # "slow" can only finish after on_done has seen "fast": the caller's work per result
    # (the train step's MLflow logging) overlaps the fits instead of following them all
    seen = tmp_path / "seen-fast"
    tasks = {"slow": (str(seen), ""), "fast": ("", "")}

    def done(key, outcome):
        order.append((key, outcome.ok))
        if key == "fast":
            seen.touch()

    order = []
    out = run_partitions(wait_for, tasks, workers=2, on_done=done)
    assert order == [("fast", True), ("slow", True)]
    assert list(out) == ["slow", "fast"]  # the result keeps the tasks' order


def test_on_done_in_process_and_for_failures():
    order = []
    run_partitions(
        square_or_fail, {"a": (3,), "b": (-1,)}, workers=1, on_done=lambda k, o: order.append(o)
    )
    assert [(o.key, o.ok) for o in order] == [("a", True), ("b", False)]


def test_an_on_done_that_raises_stops_the_run_and_starts_no_more_tasks(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    gate = tmp_path / "never"  # the tasks after the first wait until the run gives up on them
    tasks = {"first": ("", str(started / "first"))}
    tasks |= {f"t{i}": (str(gate), str(started / f"t{i}")) for i in range(6)}

    def done(key, outcome):
        gate.touch()  # let the started tasks end, then fail as a logging error would
        raise RuntimeError(f"MLflow down while logging {key}")

    with pytest.raises(RuntimeError, match="MLflow down while logging first"):
        run_partitions(wait_for, tasks, workers=2, on_done=done)
    assert len(list(started.iterdir())) < len(tasks)  # the queued tasks never ran
