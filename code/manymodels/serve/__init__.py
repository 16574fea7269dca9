"""Online scoring: a FastAPI app answering forecast requests with each partition's model.

Models are resolved by alias in the MLflow registry on first use and kept in an LRU bounded by
count and bytes (:mod:`.cache`); features come from the snapshot batch scoring writes
(:mod:`.snapshot`); :mod:`.service` holds the logic and :mod:`.app` the HTTP layer. Start it
with ``manymodels serve`` (docs/serving.md). Importing this package imports no web framework.
"""
