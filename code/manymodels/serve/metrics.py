"""Prometheus metrics for the online API, rendered in the text exposition format (0.0.4).

A few counters, gauges and histograms with labels are all the server needs, so they live here
rather than in another dependency. Every update takes one lock; rendering copies the values.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

__all__ = ["LATENCY_BUCKETS", "LOAD_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    text = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + text + "}"


class Metrics:
    """Named metrics: ``inc`` (counter), ``set`` (gauge), ``observe`` (histogram)."""

    def __init__(self, prefix: str = "manymodels_serve") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[tuple, float]] = defaultdict(dict)
        self._hist: dict[str, dict[tuple, list]] = defaultdict(dict)
        self._buckets: dict[str, tuple[float, ...]] = {}

    def describe(self, name: str, kind: str, text: str, buckets=None) -> None:
        self._help[name] = (kind, text)
        if buckets is not None:
            self._buckets[name] = tuple(buckets)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = self._values[name].get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = self._buckets[name]
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._hist[name].setdefault(key, [[0] * len(buckets), 0.0, 0])
            i = bisect.bisect_left(buckets, value)
            if i < len(buckets):
                counts[0][i] += 1
            counts[1] += value
            counts[2] += 1

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's value (0 when never set); a histogram's count."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            if name in self._hist:
                return float(self._hist[name].get(key, [None, 0.0, 0])[2])
            return self._values[name].get(key, 0.0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, (kind, text) in self._help.items():
                full = f"{self.prefix}_{name}"
                lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
                if kind == "histogram":
                    for key, (counts, total, n) in sorted(self._hist[name].items()):
                        labels, running = dict(key), 0
                        for bound, c in zip(self._buckets[name], counts, strict=True):
                            running += c
                            le = _labels({**labels, "le": repr(float(bound))})
                            lines.append(f"{full}_bucket{le} {running}")
                        lines.append(f"{full}_bucket{_labels({**labels, 'le': '+Inf'})} {n}")
                        lines.append(f"{full}_sum{_labels(labels)} {total!r}")
                        lines.append(f"{full}_count{_labels(labels)} {n}")
                else:
                    for key, v in sorted(self._values[name].items()):
                        lines.append(f"{full}{_labels(dict(key))} {v!r}")
        return "\n".join(lines) + "\n"
