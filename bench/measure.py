"""How the suite measures: timing in alternating rounds, a result row with its goal, the machine.

A row holds our figure and the anchor's (what a user would run instead), measured in the same
process and the same run, so that their ratio means something on a noisy shared machine even
where the absolute times do not. Ratios are ours / anchor, for times and for rates alike; a
goal says which way is good.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import socket
import statistics
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BudgetExceeded", "Goal", "Row", "in_fresh_process", "interleaved", "machine", "timed"]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def interleaved(candidates: Mapping[str, Callable[[int], Any]], repeat: int, warmup: int = 1) -> dict[str, float]:
    """The median seconds of each candidate over `repeat` rounds, after `warmup` untimed rounds.

    Each round calls every candidate once, in turn, with the round's number (to pick that
    round's inputs), so a slow spell of a shared machine falls on all candidates alike.
    """
    if repeat < 1:
        raise ValueError(f"repeat = {repeat}; expected at least 1")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(warmup + repeat):
        for name, action in candidates.items():
            seconds, _ = timed(lambda: action(round_))
            if round_ >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


@dataclass(frozen=True)
class Goal:
    """A target on a row's ratio (ours / anchor) or on our figure itself.

    >>> Goal("ratio", "<=", 1.0).text("s"), Goal("ours", "<=", 0.001).text("s")
    ('<= 1.0x', '<= 1 ms')
    """

    on: str  # "ratio" or "ours"
    op: str  # "<=" or ">="
    value: float

    def __post_init__(self) -> None:
        if self.on not in ("ratio", "ours") or self.op not in ("<=", ">="):
            raise ValueError(f"goal on {self.on!r} with {self.op!r}; expected 'ratio' or 'ours' and '<=' or '>='")

    def met(self, ours: float | None, ratio: float | None) -> bool | None:
        """Whether the figure reaches the goal; None when the figure is missing."""
        figure = ratio if self.on == "ratio" else ours
        if figure is None or not math.isfinite(figure):
            return None
        return figure <= self.value if self.op == "<=" else figure >= self.value

    def text(self, unit: str) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.value:.1f}x" if self.value >= 0.1 else f"{self.op} {self.value:g}x"
        return f"{self.op} {format_value(self.value, unit)}"


@dataclass
class Row:
    """One line of the results table: our figure against the anchor's, at a size N x D."""

    group: str  # the suite's group, as named by --only
    name: str
    unit: str  # "s", "images/s", "MB", "recall", ...
    ours: float | None
    ours_label: str
    anchor: float | None = None
    anchor_label: str = ""
    n: int | None = None
    d: int | None = None
    goal: Goal | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.anchor is None or self.anchor == 0:
            return None
        return self.ours / self.anchor

    @property
    def met(self) -> bool | None:
        return self.goal.met(self.ours, self.ratio) if self.goal else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "name": self.name, "unit": self.unit,
            "ours": self.ours, "ours_label": self.ours_label,
            "anchor": self.anchor, "anchor_label": self.anchor_label,
            "ratio": self.ratio, "goal": self.goal.text(self.unit) if self.goal else None, "met": self.met,
            "n": self.n, "d": self.d, "notes": self.notes,
        }


def format_value(value: float | None, unit: str) -> str:
    """A figure for the table, in a readable unit.

    >>> format_value(0.00042, "s"), format_value(2.5, "s"), format_value(1234.5, "images/s")
    ('420 µs', '2.50 s', '1,234 images/s')
    """
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit in ("recall", "fraction"):
        return f"{value:.3f}"
    return f"{value:,.0f} {unit}"


class BudgetExceeded(RuntimeError):
    """A measurement ran past its time budget and was stopped."""


def in_fresh_process(function: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """`function(*args)` in a new (spawned) Python process: its result, or its error raised here.

    For what must start cold (a first render compiles its kernels) or may run past its budget
    (stopped after `timeout` seconds: `BudgetExceeded`). `function` must be importable by name.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, function, args))  # not a daemon: it may start its own workers
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise BudgetExceeded(f"{function.__name__} ran past its budget of {timeout:.0f} s")
        status, value = receive.recv()
    except EOFError:  # it died without a word (killed, out of memory)
        process.join(5)
        status, value = "error", f"the process ended without a result (exit code {process.exitcode})"
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
        receive.close()
    if status == "error":
        raise RuntimeError(f"{function.__name__} failed in its own process:\n{value}")
    return value


def _child(send: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        send.send(("ok", function(*args)))
    except BaseException:  # reported to the parent, which raises it
        send.send(("error", traceback.format_exc()))
    finally:
        send.close()


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU model and cores, library versions, GPU if any."""
    import faiss
    import numpy
    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # Linux; elsewhere platform.processor() stands
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "host": socket.gethostname(), "cpu": model, "cores": usable, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "gpu": gpu, "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__, "faiss": faiss.__version__,
        "platform": platform.platform(),
    }


def machine_line(info: Mapping[str, Any]) -> str:
    """The machine in one line, for every row of the table.

    >>> machine_line({"cpu": "AMD EPYC", "cores": 2, "torch": "2.14.1", "gpu": None})
    'AMD EPYC, 2 cores, torch 2.14.1, no GPU'
    """
    return f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['gpu'] or 'no GPU'}"
