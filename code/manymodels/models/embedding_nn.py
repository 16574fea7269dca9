"""A small neural forecaster: one learned embedding per categorical column, then an MLP.

Each categorical column (store, product, week of year) gets its own embedding table whose row 0
is reserved for categories unseen in training; the embeddings are concatenated with the
standardized numeric features and fed to a two-layer MLP that predicts the transformed target.

With ``loss="poisson"`` the net works on each row's own sales scale instead: the level ``s`` is
``1 +`` the row's ``scale_feature`` (a rolling mean known at the forecast origin, e.g.
``rmean_13``), the history features enter as multiples of it, and the net predicts
``log(E[y] / s)`` under a Poisson likelihood, so one net fits series selling 1 or 10,000 a week
and weeks with no sales are likely outcomes rather than outliers of a log scale.

torch is imported inside the methods, not at module import: ``import torch`` costs seconds and
scoring paths that never touch this model should not pay it.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from manymodels.features import HISTORY_PREFIXES
from manymodels.models._input import (
    check_model_input,
    choose_target_transform,
    numeric_matrix,
    resolve_feature_types,
    signed_expm1,
    signed_log1p,
)

__all__ = ["EmbeddingNetForecaster"]


class EmbeddingNetForecaster(RegressorMixin, BaseEstimator):
    """Embeddings for categories plus standardized numbers into an MLP, with early stopping.

    Args:
        categorical_features: columns to embed; None infers (non-numeric dtypes).
        numeric_features: columns to standardize; None infers (numeric dtypes).
        embedding_dim: size of each categorical embedding.
        hidden_units: width of the two hidden layers.
        epochs: most passes over the training rows.
        batch_size: rows per gradient step.
        learning_rate: Adam step size. On the demo partitions 0.005 beat 0.01 (which stopped
            early on noisier validation losses) and matched 0.003 in fewer epochs.
        patience: epochs without a better validation loss before training stops.
        validation_fraction: without ``eval_set``, the share of rows, taken from the **end** of
            X, held out for early stopping. Passing rows in time order is the caller's job
            (:func:`manymodels.features.build_features` returns them so). When it rounds to no
            row, training runs all ``epochs``.
        target_transform: ``"log1p"`` (also applied to ``lag_*``/``rmean_*`` features),
            ``"none"``, or ``"auto"``: ``"none"`` when half or more of the training weeks sold
            nothing, else ``"log1p"`` (:func:`manymodels.models._input.choose_target_transform`).
        loss: ``"mse"`` on the (standardised, transformed) target, or ``"poisson"``: the Poisson
            deviance of units on each row's scale (``target_transform`` is then unused).
        scale_feature: with ``loss="poisson"``, the numeric column whose value (plus 1) is a
            row's sales level; None: one level for all rows (the training mean plus 1).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...; the fitted
            module always ends on the CPU so a pickled model loads anywhere.
        random_state: seeds weight initialisation and batch order (the global torch RNG is
            restored afterwards).

    Attributes:
        target_transform_: the transform used (``"auto"`` resolved).
        module_: the fitted torch module (on the CPU), weights of the best validation epoch.
        categories_: per categorical column, the categories seen in training (embedding row i+1).
        best_epoch_, n_epochs_: the epoch kept (1-based) and the epochs run.
        validation_loss_: validation loss per epoch (empty when there was no validation).
    """

    def __init__(
        self,
        *,
        categorical_features=None,
        numeric_features=None,
        embedding_dim: int = 4,
        hidden_units: int = 32,
        epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 0.005,
        patience: int = 5,
        validation_fraction: float = 0.1,
        target_transform: str = "auto",
        loss: str = "mse",
        scale_feature: str | None = None,
        device: str = "auto",
        random_state=None,
    ):
        self.categorical_features = categorical_features
        self.numeric_features = numeric_features
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.target_transform = target_transform
        self.loss = loss
        self.scale_feature = scale_feature
        self.device = device
        self.random_state = random_state

    def fit(self, X, y, eval_set=None):
        """Train on ``X``/``y``, early stopping on ``eval_set=(X_val, y_val)`` when given.

        Raises:
            ValueError: a setting is invalid, a feature column is missing or has NaN, y has NaN.
        """
        train, val = self._prepare(X, y, eval_set)
        self._train(train, val)
        return self

    def _prepare(self, X, y, eval_set=None) -> tuple[tuple, tuple | None]:
        """Everything ``fit`` does before training: the ``(train, val)`` arrays (codes, scaled
        numbers, target, log level; val None: no early stopping). The batched trainer
        (:mod:`manymodels.models.batched_nn`) trains many models from these."""
        self._check_params()
        frame, y = check_model_input(self, X, y, reset=True)
        poisson = self.loss == "poisson"
        if poisson and (y < 0).any():
            raise ValueError("loss='poisson' needs non-negative units: use loss='mse'")
        self.target_transform_ = (
            "none" if poisson else choose_target_transform(self.target_transform, y)
        )
        cat, num = resolve_feature_types(frame, self.categorical_features, self.numeric_features)
        if poisson and self.scale_feature is not None and self.scale_feature not in num:
            raise ValueError(
                f"scale_feature {self.scale_feature!r} is not a numeric feature of X: name one "
                "of the rolling means (e.g. 'rmean_13') or None"
            )
        self.categorical_features_, self.numeric_features_ = cat, num
        self.categories_ = [_categories(frame[c]) for c in cat]
        self.level_ = 1.0 + float(np.mean(y))  # the level when there is no scale_feature
        codes, numeric, log_level = self._inputs(frame)
        self.numeric_mean_ = numeric.mean(axis=0)
        self.numeric_scale_ = np.where(numeric.std(axis=0) > 0, numeric.std(axis=0), 1.0)
        target = self._forward_target(y)
        if poisson:
            self.target_mean_, self.target_scale_ = 0.0, 1.0
        else:
            self.target_mean_ = float(target.mean())
            self.target_scale_ = float(target.std() or 1.0)
        target = ((target - self.target_mean_) / self.target_scale_).astype(np.float32)
        train = (codes, self._scale(numeric), target, log_level)
        if eval_set is not None:
            X_val, y_val = eval_set
            val_frame, y_val = check_model_input(self, X_val, y_val, reset=False)
            val_codes, val_numeric, val_level = self._inputs(val_frame)
            target_val = (self._forward_target(y_val) - self.target_mean_) / self.target_scale_
            val = (
                val_codes,
                self._scale(val_numeric),
                target_val.astype(np.float32),
                val_level,
            )
        else:
            n_val = round(self.validation_fraction * len(y))
            val = None if n_val < 1 or n_val >= len(y) else tuple(a[-n_val:] for a in train)
            train = train if val is None else tuple(a[:-n_val] for a in train)
        return train, val

    def predict(self, X) -> np.ndarray:
        """Forecast units for each row of ``X``, clipped at 0."""
        import torch  # noqa: PLC0415  (lazy: see the module docstring)

        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        codes, numeric, log_level = self._inputs(frame)
        self.module_.eval()
        with torch.no_grad():
            out = _forward(
                self.module_, torch.as_tensor(codes), torch.as_tensor(self._scale(numeric))
            )
        if getattr(self, "loss", "mse") == "poisson":
            return np.exp(np.minimum(out.double().numpy() + log_level, 30.0))
        pred = out.double().numpy() * self.target_scale_ + self.target_mean_
        if self.target_transform_ == "log1p":
            pred = signed_expm1(pred)
        return np.clip(pred, 0.0, None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # demand forecasts are clipped at 0, so fitting negative targets is not meaningful
        tags.target_tags.positive_only = True
        return tags

    def _train(self, train, val) -> None:
        import torch  # noqa: PLC0415  (lazy: see the module docstring)

        seed = self._seed()
        device = _device(self.device)
        module = self._new_module(seed, np.shape(train[1])[1], device).to(device)
        codes, numeric, target, offset = (torch.as_tensor(a, device=device) for a in train)
        val = None if val is None else [torch.as_tensor(a, device=device) for a in val]
        loss_of = _poisson_loss if self.loss == "poisson" else _mse_loss
        order = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        best, best_epoch, self.validation_loss_, waited = None, None, [], 0
        for epoch in range(1, self.epochs + 1):
            module.train()
            for rows in torch.randperm(len(target), generator=order).split(self.batch_size):
                batch = rows.to(device)
                pred = _forward(module, codes[batch], numeric[batch])
                optimizer.zero_grad()
                loss_of(pred, target[batch], offset[batch]).backward()
                optimizer.step()
            if val is None:
                continue
            module.eval()
            with torch.no_grad():
                loss = float(loss_of(_forward(module, val[0], val[1]), val[2], val[3]))
            if not np.isfinite(loss):  # diverged: keep the best epoch so far, if any
                self.validation_loss_.append(loss)
                break
            if best is None or loss < min(self.validation_loss_):
                best, best_epoch, waited = copy.deepcopy(module.state_dict()), epoch, 0
            else:
                waited += 1
            self.validation_loss_.append(loss)
            if waited >= self.patience:
                break
        self._finish(module, best, best_epoch, epoch)

    def _seed(self) -> int:
        """The seed of weight initialisation and batch order (from ``random_state``)."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _new_module(self, seed: int, n_numeric: int, device):
        """The initial (seeded) network, built on the CPU; the global torch RNG is restored."""
        import torch  # noqa: PLC0415

        # fork_rng: seed the global torch RNG (weight init) and restore it afterwards
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            sizes = [len(c) + 1 for c in self.categories_]
            return _build(sizes, n_numeric, self.embedding_dim, self.hidden_units)

    def _finish(self, module, best, best_epoch, epoch) -> None:
        """Keep the ``best`` state (None: the last one) after ``epoch`` epochs.

        Raises:
            ValueError: the kept weights are not finite (the network diverged).
        """
        import torch  # noqa: PLC0415

        if not all(bool(torch.isfinite(p).all()) for p in (best or module.state_dict()).values()):
            raise ValueError(
                "the network diverged (non-finite weights): lower learning_rate "
                f"(now {self.learning_rate}) or use loss='mse'"
            )
        if best is None:
            self.best_epoch_ = epoch
        else:
            module.load_state_dict(best)
            self.best_epoch_ = best_epoch
        self.n_epochs_ = epoch
        self.module_ = module.cpu().eval()

    def _inputs(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's input of ``frame``: category codes, numbers, and the log level
        (:meth:`_log_level`)."""
        cats = zip(self.categorical_features_, self.categories_, strict=True)
        # index 0 is the embedding row of categories unseen in training (get_indexer gives -1)
        codes = [_codes(frame[col], c) + 1 for col, c in cats]
        codes = np.stack(codes, axis=1) if codes else np.zeros((len(frame), 0), dtype=np.int64)
        numeric = numeric_matrix(frame, self.numeric_features_)
        log_level = self._log_level(frame, numeric)
        history = [str(c).startswith(HISTORY_PREFIXES) for c in self.numeric_features_]
        if getattr(self, "loss", "mse") == "poisson":
            # history as multiples of the row's level, and the level itself on a log scale
            level = np.exp(log_level.astype(float))
            numeric[:, history] = numeric[:, history] / level[:, None]
            return codes, np.column_stack([numeric, np.log(level)]), log_level
        if self.target_transform_ == "log1p":
            numeric[:, history] = signed_log1p(numeric[:, history])
        return codes, numeric, log_level

    def _log_level(self, frame: pd.DataFrame, numeric: np.ndarray | None = None) -> np.ndarray:
        """log of each row's sales level (see ``scale_feature``); zeros unless Poisson.
        ``numeric``: ``frame``'s numeric features as floats, if at hand (the same values)."""
        if getattr(self, "loss", "mse") != "poisson":
            return np.zeros(len(frame), dtype=np.float32)
        if self.scale_feature is None:
            return np.full(len(frame), np.log(self.level_), dtype=np.float32)
        if numeric is not None and self.scale_feature in self.numeric_features_:
            values = numeric[:, list(self.numeric_features_).index(self.scale_feature)]
        else:
            values = numeric_matrix(frame, [self.scale_feature])[:, 0]
        return np.log1p(np.clip(values, 0, None)).astype(np.float32)

    def _scale(self, numeric: np.ndarray) -> np.ndarray:
        return ((numeric - self.numeric_mean_) / self.numeric_scale_).astype(np.float32)

    def _forward_target(self, y: np.ndarray) -> np.ndarray:
        return signed_log1p(y) if self.target_transform_ == "log1p" else y

    def _check_params(self) -> None:
        positive = ("embedding_dim", "hidden_units", "epochs", "batch_size", "patience")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.loss not in ("mse", "poisson"):
            raise ValueError(f"loss must be 'mse' or 'poisson', got {self.loss!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )


def _categories(values: pd.Series) -> np.ndarray:
    return pd.unique(values.dropna().astype(object).to_numpy())


def _codes(values: pd.Series, categories: np.ndarray) -> np.ndarray:
    """Each value's position in ``categories`` (-1: missing or unseen): what
    ``pd.Index(categories).get_indexer(values.astype(object))`` gives, looked up once per
    distinct value instead of per row."""
    codes, uniques = pd.factorize(values)
    found = pd.Index(categories).get_indexer(np.asarray(uniques, dtype=object))
    out = np.full(len(codes), -1, dtype=np.intp)
    known = codes >= 0
    out[known] = found[codes[known]]
    return out


def _device(name: str):
    import torch  # noqa: PLC0415

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {name!r}") from exc


def _build(cardinalities: list[int], n_numeric: int, dim: int, hidden: int):
    """Built from stock torch modules (no subclass) so pickles need no class of ours."""
    from torch import nn  # noqa: PLC0415

    return nn.ModuleDict(
        {
            "embeddings": nn.ModuleList([nn.Embedding(n, dim) for n in cardinalities]),
            "mlp": nn.Sequential(
                nn.Linear(dim * len(cardinalities) + n_numeric, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            ),
        }
    )


def _mse_loss(pred, target, offset):  # noqa: ARG001 (one signature for both losses)
    import torch  # noqa: PLC0415

    return torch.mean((pred - target) ** 2)


def _poisson_loss(pred, target, offset):
    """Poisson negative log-likelihood (up to a constant) of ``target`` with log-mean
    ``pred + offset``."""
    import torch  # noqa: PLC0415

    log_mean = pred + offset
    return torch.mean(torch.exp(log_mean) - target * log_mean)


def _forward(module, codes, numeric):
    import torch  # noqa: PLC0415

    parts = [emb(codes[:, j]) for j, emb in enumerate(module["embeddings"])]
    return module["mlp"](torch.cat([*parts, numeric], dim=1)).squeeze(1)
