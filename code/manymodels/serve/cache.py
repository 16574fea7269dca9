"""Models resolved by alias on first use, kept in an LRU bounded by count and by bytes.

* **On demand.** Nothing is preloaded: the first request for ``(name, alias)`` resolves the alias
  in the registry and loads that version; later requests are answered from memory.
* **Alias moves propagate.** A resolved alias is trusted for ``ttl_s`` seconds. After that the
  next request asks the registry again (one request does; the others keep being answered by the
  cached version meanwhile) and, if the alias now points at another version (a promotion or a
  rollback), loads it and replaces the entry. So a move is served within ``ttl_s`` plus one load.
* **Single flight.** Concurrent first requests for one model wait for a single load.
* **Registry outages.** When the registry cannot be reached, a cached model keeps answering (its
  alias is re-checked after another ``ttl_s``); a model that is not cached raises
  :class:`RegistryUnavailable` (the API answers 503 with Retry-After).
* **Bounds.** After every load the least recently used entries are evicted until at most
  ``max_models`` remain and their sizes add up to at most ``max_bytes`` (the newest entry always
  stays, even alone above the byte bound, and a warning says so).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manymodels.redact import redact
from manymodels.serve.metrics import LOAD_BUCKETS, Metrics

__all__ = ["Entry", "ModelCache", "ModelNotFound", "RegistryUnavailable"]

log = logging.getLogger(__name__)


class RegistryUnavailable(RuntimeError):
    """The registry could not be reached (or a model not be fetched) and nothing cached helps."""


class ModelNotFound(LookupError):
    """The registry has no such model, or the alias is not set on it."""


@dataclass
class Entry:
    """One cached model version and what the cache knows about it."""

    name: str
    alias: str
    version: str
    value: Any
    nbytes: int
    load_s: float
    resolved_at: float
    stale: bool = False  # the last alias check failed: answering with what is cached


class ModelCache:
    """An LRU of loaded models keyed by ``(registered model name, alias)``.

    Args:
        resolve: ``(name, alias) -> version`` or None when the model or alias does not exist;
            raises on any other failure (an unreachable registry).
        load: ``(name, version) -> value`` (the loaded model and whatever goes with it).
        size: ``value -> bytes`` it holds in memory (an estimate).
        max_models: the count bound (>= 1).
        max_bytes: the byte bound.
        ttl_s: how long a resolved alias is trusted.
        metrics: where hits, misses, evictions and load times are counted.
        clock: seconds, monotonic (tests may pass their own).
    """

    def __init__(
        self,
        resolve: Callable[[str, str], str | None],
        load: Callable[[str, str], Any],
        size: Callable[[Any], int],
        *,
        max_models: int,
        max_bytes: int,
        ttl_s: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {max_models}")
        if max_bytes <= 0 or ttl_s < 0:
            raise ValueError(f"need max_bytes > 0 and ttl_s >= 0, got {max_bytes}, {ttl_s}")
        self._resolve, self._load, self._size = resolve, load, size
        self.max_models, self.max_bytes, self.ttl_s = max_models, max_bytes, ttl_s
        self.metrics = metrics or Metrics()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._flights: dict[tuple[str, str], threading.Lock] = {}
        _describe(self.metrics)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def entries(self) -> list[Entry]:
        """The cached entries, least recently used first."""
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        self._gauges()

    def peek(self, name: str, alias: str) -> Entry | None:
        """The entry when it is cached and its alias fresh (counted as a hit), else None.

        Never blocks on the registry: what the API's event loop may call directly.
        """
        key = (name, alias)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry.resolved_at >= self.ttl_s:
                return None
            self._entries.move_to_end(key)
        self.metrics.inc("cache_hits_total")
        return entry

    def discard(self, name: str, alias: str) -> None:
        """Forget one entry (the next request loads it again)."""
        self._drop((name, alias))

    def get(self, name: str, alias: str) -> Entry:
        """The entry answering ``name@alias``, loading or refreshing it as the policy says.

        Raises:
            ModelNotFound: the registry has no such model or alias.
            RegistryUnavailable: it is not cached and the registry failed.
        """
        key = (name, alias)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if self._clock() - entry.resolved_at < self.ttl_s:
                    self.metrics.inc("cache_hits_total")
                    return entry
            flight = self._flights.setdefault(key, threading.Lock())
        if entry is not None and not flight.acquire(blocking=False):
            # another request is re-checking this alias: answer with what is cached meanwhile
            self.metrics.inc("cache_hits_total")
            return entry
        if entry is None:
            flight.acquire()
        try:
            return self._refresh(key)
        finally:
            flight.release()

    def _refresh(self, key: tuple[str, str]) -> Entry:
        name, alias = key
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.resolved_at < self.ttl_s:
            self.metrics.inc("cache_hits_total")  # a concurrent request loaded it meanwhile
            return entry
        try:
            version = self._resolve(name, alias)
        except Exception as exc:
            return self._registry_failed(entry, key, "resolve", exc)
        if version is None:
            self._drop(key)
            raise ModelNotFound(f"no registered model {name!r} with alias {alias!r}")
        if entry is not None and entry.version == version:
            entry.resolved_at, entry.stale = self._clock(), False
            self.metrics.inc("cache_hits_total")
            return entry
        self.metrics.inc("cache_misses_total", reason="cold" if entry is None else "alias_moved")
        start = time.perf_counter()
        try:
            value = self._load(name, version)
        except Exception as exc:
            log.debug("serve: loading %s v%s failed", name, version, exc_info=True)
            return self._registry_failed(entry, key, "load", exc)
        load_s = time.perf_counter() - start
        self.metrics.inc("model_loads_total")
        self.metrics.observe("model_load_seconds", load_s)
        new = Entry(name, alias, version, value, int(self._size(value)), load_s, self._clock())
        if entry is not None:
            log.info("serve: %s@%s moved v%s -> v%s", name, alias, entry.version, version)
        self._insert(key, new)
        return new

    def _registry_failed(self, entry: Entry | None, key, what: str, exc: Exception) -> Entry:
        self.metrics.inc("registry_errors_total", operation=what)
        name, alias = key
        if entry is None:
            raise RegistryUnavailable(
                f"cannot {what} {name}@{alias}: the registry failed "
                f"({type(exc).__name__}: {redact(str(exc))[:300]})"
            ) from exc
        log.warning("serve: %s %s@%s failed; answering with cached v%s: %s",
                    what, name, alias, entry.version, redact(str(exc)))  # fmt: skip
        entry.resolved_at, entry.stale = self._clock(), True  # next check after another TTL
        return entry

    def _insert(self, key, new: Entry) -> None:
        evicted = []
        with self._lock:
            self._entries[key] = new
            self._entries.move_to_end(key)
            total = sum(e.nbytes for e in self._entries.values())
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_models or total > self.max_bytes
            ):
                _, old = self._entries.popitem(last=False)
                total -= old.nbytes
                evicted.append(old)
        for old in evicted:
            self.metrics.inc("cache_evictions_total")
            log.info("serve: evicted %s v%s (%d bytes)", old.name, old.version, old.nbytes)
        if new.nbytes > self.max_bytes:
            log.warning("serve: %s v%s alone (%d bytes) exceeds the byte bound %d",
                        new.name, new.version, new.nbytes, self.max_bytes)  # fmt: skip
        self._gauges()

    def _drop(self, key) -> None:
        with self._lock:
            self._entries.pop(key, None)
        self._gauges()

    def _gauges(self) -> None:
        with self._lock:
            count, total = len(self._entries), sum(e.nbytes for e in self._entries.values())
        self.metrics.set("models_loaded", count)
        self.metrics.set("models_bytes", total)


def _describe(m: Metrics) -> None:
    m.describe("cache_hits_total", "counter", "Requests for a model answered from the cache.")
    m.describe("cache_misses_total", "counter", "Model loads needed (cold or the alias moved).")
    m.describe("cache_evictions_total", "counter", "Models evicted by the LRU bounds.")
    m.describe("model_loads_total", "counter", "Model versions loaded from the registry.")
    m.describe("model_load_seconds", "histogram", "Time to load one model.", LOAD_BUCKETS)
    m.describe("registry_errors_total", "counter", "Registry calls that failed.")
    m.describe("models_loaded", "gauge", "Models in memory.")
    m.describe("models_bytes", "gauge", "Estimated bytes of the models in memory.")
