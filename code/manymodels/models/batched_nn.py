"""Train many :class:`~manymodels.models.embedding_nn.EmbeddingNetForecaster` at once, as one
tensor program.

The networks of many partitions are small: trained one at a time, per-step overhead (Python,
autograd, optimizer bookkeeping) costs more than the arithmetic. Here ``B`` networks of the same
shape are stacked (every weight gets a leading ``[B]`` dimension; layers are ``torch.baddbmm``,
embeddings a ``gather``), so one forward/backward pass and one optimizer step train all of them.

What stays per model, exactly as :meth:`EmbeddingNetForecaster.fit` does it:

- **initial weights and batch order**: each model's network is built from its own seed (the
  single path's code), and its minibatches come from its own ``torch.Generator``, so step ``j``
  of epoch ``e`` sees the same rows as in a one-at-a-time fit;
- **ragged data**: rows are padded to the block's largest model and masked; a model with fewer
  minibatches in an epoch skips the later steps (its weights and Adam state do not move);
- **learning rate, batch size, epochs, patience**: Adam is applied per model (its own step
  count and bias correction); early stopping is per model: a model that stopped stops
  updating and keeps its best epoch's weights;
- **embedding cardinalities**: each table is padded to the block's largest one; padded rows are
  never looked up, so they never change, and are cut off again at the end;
- **loss, target scaling, device**: models are grouped by what must be shared (loss, layer
  sizes, device); each group is one program.

Each result is an ordinary fitted ``EmbeddingNetForecaster`` (its weights unstacked into its
own torch module), so pickling, the pyfunc wrapper and serving do not know how it was trained.
A model whose data is invalid, or that diverges, gets its own ``ValueError`` (the one the single
path raises) in its slot of the result; the others are unaffected.

Equivalence with the single path is exact in the algorithm, not in floating point: batched
matmuls sum in another order, so predictions agree to about 1e-5 relative (tested at 1e-4).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from manymodels.models.embedding_nn import EmbeddingNetForecaster, _device

__all__ = ["fit_many"]

log = logging.getLogger(__name__)

# torch.optim.Adam's defaults (what the single path uses)
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


def fit_many(
    jobs: Sequence[tuple[EmbeddingNetForecaster, object, object, tuple | None]],
) -> list[EmbeddingNetForecaster | Exception]:
    """Fit every ``(estimator, X, y, eval_set)`` of ``jobs``; networks that can share a program
    are trained together.

    Returns:
        per job, in order: the estimator, fitted in place (as ``estimator.fit(X, y, eval_set)``
        would have), or the ``ValueError`` that fit would have raised for it.
    """
    results: list[EmbeddingNetForecaster | Exception | None] = [None] * len(jobs)
    groups: dict[tuple, list] = defaultdict(list)
    for i, (est, X, y, eval_set) in enumerate(jobs):
        try:
            train, val = est._prepare(X, y, eval_set)
            device = _device(est.device)
        except ValueError as exc:
            results[i] = exc
            continue
        shape = (
            est.loss,
            est.embedding_dim,
            est.hidden_units,
            train[0].shape[1],
            train[1].shape[1],
            str(device),
        )
        groups[shape].append((i, est, train, val))
    for members in groups.values():
        try:
            outcomes = _train_group([(est, train, val) for _, est, train, val in members])
        except Exception as exc:  # noqa: BLE001 (e.g. out of device memory: see below)
            # the program as a whole failed: one at a time, so each model gets its own error
            log.warning("batched training of %d networks failed (%s): fitting them one at a "
                        "time", len(members), exc)  # fmt: skip
            outcomes = [_fit_one(est, train, val) for _, est, train, val in members]
        for (i, *_), outcome in zip(members, outcomes, strict=True):
            results[i] = outcome
    return results


def _fit_one(est: EmbeddingNetForecaster, train, val) -> EmbeddingNetForecaster | Exception:
    try:
        est._train(train, val)
    except Exception as exc:  # noqa: BLE001 (reported in the model's slot)
        return exc
    return est


def _train_group(models: list[tuple]) -> list[EmbeddingNetForecaster | Exception]:
    """One batched program for networks of one shape (see the module docstring)."""
    import torch  # noqa: PLC0415

    ests = [m[0] for m in models]
    device = _device(ests[0].device)
    seeds = [est._seed() for est in ests]
    n_numeric = models[0][1][1].shape[1]
    modules = [est._new_module(s, n_numeric, device) for est, s in zip(ests, seeds, strict=True)]
    names = list(modules[0].state_dict())
    params = [_stack([m.state_dict()[k] for m in modules]).to(device) for k in names]
    for p in params:
        p.requires_grad_(True)
    n_cat = len(ests[0].categories_)
    train = _pad([m[1] for m in models], device)
    val = _pad([m[2] if m[2] is not None else _empty(m[1]) for m in models], device)
    loss_of = _poisson_rows if ests[0].loss == "poisson" else _mse_rows
    adam = _Adam(params, [float(e.learning_rate) for e in ests])
    best = [p.detach().clone() for p in params]
    progress = _Progress(ests, has_val=[m[2] is not None for m in models])
    orders = [torch.Generator().manual_seed(s) for s in seeds]
    n_rows = [len(m[1][2]) for m in models]
    for epoch in range(1, max(e.epochs for e in ests) + 1):
        if not progress.start(epoch):
            break
        rows, mask = (t.to(device) for t in _epoch_batches(ests, orders, n_rows, progress.active))
        for j in range(rows.shape[1]):
            batch = rows[:, j]
            weight = mask[:, j].to(params[0].dtype)
            count = weight.sum(1)
            pred = _forward(params, n_cat, _take(train[0], batch), _take(train[1], batch))
            per_row = loss_of(pred, _take(train[2], batch), _take(train[3], batch))
            loss = ((per_row * weight).sum(1) / count.clamp(min=1)).sum()
            adam.step(torch.autograd.grad(loss, params), moving=count > 0)
        if not progress.validating():
            continue
        with torch.no_grad():
            pred = _forward(params, n_cat, val[0], val[1])
            weight = val[4].to(pred.dtype)
            per_model = (loss_of(pred, val[2], val[3]) * weight).sum(1) / weight.sum(1).clamp(min=1)
        improved = progress.validated(epoch, per_model.tolist())
        if any(improved):
            keep = torch.tensor(improved, device=device)
            with torch.no_grad():
                for b, p in zip(best, params, strict=True):
                    b.copy_(torch.where(_expand(keep, p), p, b))
    results: list[EmbeddingNetForecaster | Exception] = []
    for i, (est, module) in enumerate(zip(ests, modules, strict=True)):
        est.validation_loss_ = progress.history[i]
        kept = _unstack(module, names, best, i) if progress.best_epoch[i] else None
        module.load_state_dict(_unstack(module, names, params, i))
        try:
            est._finish(module, kept, progress.best_epoch[i], progress.epochs_run[i])
        except ValueError as exc:
            results.append(exc)
            continue
        results.append(est)
    return results


class _Progress:
    """Per model, the epoch loop's bookkeeping exactly as ``EmbeddingNetForecaster._train``
    keeps it: epochs run, validation losses, the best epoch, patience, and who still trains."""

    def __init__(self, ests: list, has_val: list[bool]):
        self.ests, self.has_val = ests, has_val
        self.active = [True] * len(ests)
        self.best_epoch: list[int | None] = [None] * len(ests)
        self.history: list[list[float]] = [[] for _ in ests]
        self.waited, self.epochs_run = [0] * len(ests), [0] * len(ests)

    def start(self, epoch: int) -> bool:
        """Begin ``epoch`` (models past their own ``epochs`` stop); False when none trains."""
        for i, est in enumerate(self.ests):
            self.active[i] = self.active[i] and epoch <= est.epochs
            self.epochs_run[i] = epoch if self.active[i] else self.epochs_run[i]
        return any(self.active)

    def validating(self) -> bool:
        return any(a and v for a, v in zip(self.active, self.has_val, strict=True))

    def validated(self, epoch: int, losses: list[float]) -> list[bool]:
        """Record the epoch's validation losses; which models improved on their best."""
        improved = [False] * len(losses)
        for i, loss in enumerate(losses):
            if not (self.active[i] and self.has_val[i]):
                continue
            self.history[i].append(loss)
            if not np.isfinite(loss):  # diverged: keep the best epoch so far, if any
                self.active[i] = False
                continue
            if self.best_epoch[i] is None or loss < min(self.history[i][:-1]):
                improved[i], self.best_epoch[i], self.waited[i] = True, epoch, 0
            else:
                self.waited[i] += 1
            if self.waited[i] >= self.ests[i].patience:
                self.active[i] = False
        return improved


class _Adam:
    """torch.optim.Adam's update (its defaults, the same formula) for stacked weights, per
    model: its own learning rate and step count; models not ``moving`` in a step keep their
    weights and moments unchanged (a model without a minibatch there, or one that stopped)."""

    def __init__(self, params: list, lr: list[float]):
        import torch  # noqa: PLC0415

        device = params[0].device
        self.params, self.lr = params, torch.tensor(lr, dtype=torch.float64, device=device)
        self.steps = torch.zeros(len(lr), dtype=torch.float64, device=device)
        self.m1 = [torch.zeros_like(p) for p in params]
        self.m2 = [torch.zeros_like(p) for p in params]

    def step(self, grads, moving) -> None:
        import torch  # noqa: PLC0415

        dtype = self.params[0].dtype
        with torch.no_grad():
            self.steps += moving.to(self.steps.dtype)
            t = self.steps.clamp(min=1)
            step_size = (self.lr / (1 - _BETA1**t)).to(dtype)
            bc2_sqrt = torch.sqrt(1 - _BETA2**t).to(dtype)
            for p, g, a, b in zip(self.params, grads, self.m1, self.m2, strict=True):
                keep = _expand(moving, p)
                new_a = a.lerp(g, 1 - _BETA1)
                new_b = torch.addcmul(b * _BETA2, g, g, value=1 - _BETA2)
                denom = (new_b.sqrt() / _expand(bc2_sqrt, p)).add_(_EPS)
                new_p = p - _expand(step_size, p) * (new_a / denom)
                p.copy_(torch.where(keep, new_p, p))
                a.copy_(torch.where(keep, new_a, a))
                b.copy_(torch.where(keep, new_b, b))


def _stack(tensors: list):
    """``[B, ...]`` from per-model tensors, zero-padding the first dimension of embeddings."""
    import torch  # noqa: PLC0415

    rows = max(t.shape[0] for t in tensors)
    out = torch.zeros((len(tensors), rows, *tensors[0].shape[1:]), dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out


def _unstack(module, names: list[str], stacked: list, i: int) -> dict:
    """Model ``i``'s state dict (embedding tables cut to its own cardinalities)."""
    own = module.state_dict()
    return {
        k: s[i, : own[k].shape[0]].detach().clone().cpu()
        for k, s in zip(names, stacked, strict=True)
    }


def _empty(train: tuple) -> tuple:
    return tuple(a[:0] for a in train)


def _pad(parts: list[tuple], device) -> tuple:
    """Stack per-model ``(codes, numeric, target, offset)`` to ``[B, rows, ...]``; plus a mask."""
    import torch  # noqa: PLC0415

    B = len(parts)
    n = max(1, *(len(p[2]) for p in parts))
    out = []
    for k in range(4):
        first = np.asarray(parts[0][k])
        tail = first.shape[1:]
        dtype = np.int64 if k == 0 else np.float32
        buf = np.zeros((B, n, *tail), dtype=dtype)
        for i, p in enumerate(parts):
            buf[i, : len(p[k])] = p[k]
        out.append(torch.as_tensor(buf, device=device))
    mask = np.zeros((B, n), dtype=bool)
    for i, p in enumerate(parts):
        mask[i, : len(p[2])] = True
    out.append(torch.as_tensor(mask, device=device))
    return tuple(out)


def _epoch_batches(ests, orders, n_rows, active) -> tuple:
    """Each active model's minibatches of one epoch (its own permutation, its own batch size):
    row indices ``[B, steps, batch]`` and a mask of the real ones."""
    import torch  # noqa: PLC0415

    sizes = [e.batch_size for e in ests]
    steps = max(math.ceil(n / s) for n, s, a in zip(n_rows, sizes, active, strict=True) if a)
    width = max(s for s, a in zip(sizes, active, strict=True) if a)
    rows = torch.zeros((len(ests), steps, width), dtype=torch.int64)
    mask = torch.zeros((len(ests), steps, width), dtype=torch.bool)
    for i, (n, size) in enumerate(zip(n_rows, sizes, strict=True)):
        if not active[i]:
            continue
        perm = torch.randperm(n, generator=orders[i])
        for j, chunk in enumerate(perm.split(size)):
            rows[i, j, : len(chunk)] = chunk
            mask[i, j, : len(chunk)] = True
    return rows, mask


def _take(data, rows):
    """``data[i, rows[i]]`` for every model ``i`` (``data`` is ``[B, n, ...]``)."""
    import torch  # noqa: PLC0415

    index = rows.reshape(*rows.shape, *([1] * (data.dim() - 2))).expand(
        *rows.shape, *data.shape[2:]
    )
    return torch.gather(data, 1, index)


def _forward(params: list, n_cat: int, codes, numeric):
    """The stacked network: ``[B, rows]`` outputs (params in ``_build``'s state-dict order)."""
    import torch  # noqa: PLC0415

    tables, (w1, b1, w2, b2, w3, b3) = params[:n_cat], params[n_cat:]
    parts = [_take(table, codes[:, :, j]) for j, table in enumerate(tables)]
    x = torch.cat([*parts, numeric], dim=2)
    h = torch.relu(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
    h = torch.relu(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
    return torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)).squeeze(2)


def _mse_rows(pred, target, offset):  # noqa: ARG001 (one signature for both losses)
    return (pred - target) ** 2


def _poisson_rows(pred, target, offset):
    import torch  # noqa: PLC0415

    log_mean = pred + offset
    return torch.exp(log_mean) - target * log_mean


def _expand(per_model, like):
    return per_model.reshape(-1, *([1] * (like.dim() - 1)))
