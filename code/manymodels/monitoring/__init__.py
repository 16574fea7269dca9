"""Monitoring: served forecasts against the actuals that arrive later, input drift against the
profile stored with each model, stale champions, data quality and pipeline runs; one
self-contained HTML dashboard. Pure cores only: :mod:`manymodels.steps.monitor` does the I/O.
"""
