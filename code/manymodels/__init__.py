"""manymodels: one demand-forecasting ensemble per data partition, trained, gated, registered,
promoted and scored by small step modules (see ``manymodels.steps``)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
