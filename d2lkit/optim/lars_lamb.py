"""LARS (You et al., 2017) and LAMB (You et al., 2020): layer-wise trust ratios for large batches.

Both rescale each layer's step so that its size is a fixed fraction of the layer's weight norm,
whatever the size of its gradient: layers whose gradients are large relative to their weights
no longer dictate the largest stable learning rate for all the others.
"""

from __future__ import annotations

import torch
from torch import Tensor

from d2lkit.checks import flag
from d2lkit.optim import (
    MomentsState,
    Optimizer,
    VelocityState,
    _moments_hp,
    _moments_init,
    _nonneg,
    _positive,
    _unit,
    _velocity_init,
)


def _ratio(numerator: Tensor, denominator: Tensor, weight_norm: Tensor) -> Tensor:
    """Return numerator / denominator, or 1 where the weight or the denominator is zero."""
    ok = (weight_norm > 0) & (denominator > 0)
    return torch.where(ok, numerator / torch.where(ok, denominator, 1.0), 1.0)


@torch.no_grad()
def _lars_update(grads, state, params, hp):
    mu, wd, eta = hp["momentum"], hp["weight_decay"], hp["trust_coefficient"]
    new_params, velocity = [], []
    for p, g, v in zip(params, grads, state.velocity, strict=True):
        if p.dim() > 1:  # weights only: biases and gains are neither decayed nor rescaled
            w_norm = p.norm()
            trust = _ratio(eta * w_norm, g.norm() + wd * w_norm, w_norm)
            g = (g + wd * p) * trust
        v = mu * v + g
        step = g + mu * v if hp["nesterov"] else v
        new_params.append(p - hp["lr"] * step)
        velocity.append(v)
    return new_params, VelocityState(velocity)


def lars(
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    nesterov: bool = False,
) -> Optimizer:
    r"""Return LARS: momentum SGD on the gradient of each weight matrix rescaled by its trust ratio.

    For every parameter of 2+ dims, $g \leftarrow \tau (g + \lambda w)$ with the *local learning
    rate* $\tau = \eta_{\text{trust}} \|w\| / (\|g\| + \lambda\|w\|)$ (1 if a norm is zero); then
    $v \leftarrow \mu v + g$, $w \leftarrow w - \eta v$. This is Algorithm 1 of You et al. (2017)
    with the global rate outside the momentum (the same for a constant $\eta$) and the same as
    ``pytorch_optimizer.LARS(lr=lr, momentum=momentum, weight_decay=weight_decay,
    trust_coefficient=trust_coefficient, nesterov=nesterov)``.
    """
    hp = {
        "lr": _nonneg("lr", lr),
        "momentum": _unit("momentum", momentum),
        "weight_decay": _nonneg("weight_decay", weight_decay),
        "trust_coefficient": _positive("trust_coefficient", trust_coefficient),
        "nesterov": flag("nesterov", nesterov),
    }
    return Optimizer("lars", _velocity_init, _lars_update, hp)


@torch.no_grad()
def _lamb_update(grads, state, params, hp):
    beta1, beta2, step = hp["beta1"], hp["beta2"], state.step + 1
    bc1, bc2 = (1 - beta1**step, 1 - beta2**step) if hp["bias_correction"] else (1.0, 1.0)
    new_params, ms, vs = [], [], []
    for p, g, m, v in zip(params, grads, state.m, state.v, strict=True):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        r = (m / bc1) / ((v / bc2).sqrt() + hp["eps"]) + hp["weight_decay"] * p
        w_norm = p.norm().clamp(max=hp["clamp"])
        r_norm = r.norm()
        trust = _ratio(w_norm, r_norm + hp["eps"], w_norm * r_norm)
        new_params.append(p - hp["lr"] * trust * r)
        ms.append(m)
        vs.append(v)
    return new_params, MomentsState(ms, vs, step)


def lamb(
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    clamp: float = 10.0,
    bias_correction: bool = True,
) -> Optimizer:
    r"""Return LAMB: the Adam direction plus weight decay, rescaled per tensor to a trust ratio.

    $r = \hat m / (\sqrt{\hat v} + \epsilon) + \lambda w$ and
    $w \leftarrow w - \eta\, \phi(\|w\|) / (\|r\| + \epsilon)\; r$ with
    $\phi(z) = \min(z, \text{clamp})$ (ratio 1 where a norm is zero): Algorithm 2 of You et al.
    (2020), applied to every tensor. With ``bias_correction=False`` ($\hat m = m$,
    $\hat v = v$) it is the same as ``pytorch_optimizer.Lamb(lr=lr, betas=(beta1, beta2),
    eps=eps, weight_decay=weight_decay, weight_decouple=False, adam_debias=True)``, whose own
    default corrects $m$ but not $v$; the paper corrects both, as the default here does.
    """
    hp = {
        **_moments_hp(lr, beta1, beta2, eps),
        "weight_decay": _nonneg("weight_decay", weight_decay),
        "clamp": _positive("clamp", clamp),
        "bias_correction": flag("bias_correction", bias_correction),
    }
    return Optimizer("lamb", _moments_init, _lamb_update, hp)
