"""Tests of d2lkit.optim against torch.optim, a closed form and hand-computed steps."""

import math
import re
from typing import NamedTuple

import numpy as np
import pytest
import torch

from d2lkit import optim, toy

STEPS = 100
SHAPES = [(3, 4), (4,), ()]


class Problem(NamedTuple):
    """A random separable quadratic with fresh, partly sparse gradient noise at every step."""

    params0: list[torch.Tensor]
    curvature: list[torch.Tensor]
    center: list[torch.Tensor]
    noise: list[list[torch.Tensor]]
    masks: list[list[torch.Tensor]]

    def grads(self, params: list[torch.Tensor], t: int) -> list[torch.Tensor]:
        """Gradient at step t: masked (curvature * (p - center) + noise_t)."""
        return [
            m * (c * (p.detach() - z) + n)
            for p, c, z, n, m in zip(
                params, self.curvature, self.center, self.noise[t], self.masks[t], strict=True
            )
        ]


def make_problem(seed: int = 0) -> Problem:
    """Draw a problem from a seeded generator, in float64."""
    gen = torch.Generator().manual_seed(seed)

    def draw(shape, scale=1.0):
        return scale * torch.randn(shape, generator=gen, dtype=torch.float64)

    return Problem(
        params0=[draw(s) for s in SHAPES],
        curvature=[0.1 + 2.0 * torch.rand(s, generator=gen, dtype=torch.float64) for s in SHAPES],
        center=[draw(s) for s in SHAPES],
        noise=[[draw(s, 0.5) for s in SHAPES] for _ in range(STEPS)],
        # about one gradient entry in four is zero, as for rare features
        masks=[
            [(torch.rand(s, generator=gen) > 0.25).double() for s in SHAPES] for _ in range(STEPS)
        ],
    )


def run_ours(opt: optim.Optimizer, problem: Problem) -> list[torch.Tensor]:
    """Final parameters after STEPS updates of a from-scratch optimizer."""
    params = [p.clone() for p in problem.params0]
    state = opt.init(params)
    for t in range(STEPS):
        params, state = opt.update(problem.grads(params, t), state, params, opt.hp)
    return params


def run_torch(opt_cls, kwargs: dict, problem: Problem) -> list[torch.Tensor]:
    """Final parameters after STEPS calls of ``opt_cls(params, **kwargs).step()``."""
    params = [p.clone().requires_grad_() for p in problem.params0]
    opt = opt_cls(params, **kwargs)
    for t in range(STEPS):
        for p, g in zip(params, problem.grads(params, t), strict=True):
            p.grad = g
        opt.step()
    return [p.detach() for p in params]


def assert_close(ours: list[torch.Tensor], ref: list[torch.Tensor]) -> None:
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)


# Our factory and hyperparameters -> the torch.optim class and its arguments. The eps values are
# large on purpose: putting eps inside instead of outside a square root changes the result by far
# more than the tolerance.
TORCH_PAIRS = {
    "sgd": (optim.sgd(lr=0.05), torch.optim.SGD, {"lr": 0.05}),
    "momentum": (
        optim.momentum(lr=0.03, momentum=0.8),
        torch.optim.SGD,
        {"lr": 0.03, "momentum": 0.8},
    ),
    "nesterov": (
        optim.nesterov(lr=0.03, momentum=0.8),
        torch.optim.SGD,
        {"lr": 0.03, "momentum": 0.8, "nesterov": True},
    ),
    "adagrad": (optim.adagrad(lr=0.3, eps=0.05), torch.optim.Adagrad, {"lr": 0.3, "eps": 0.05}),
    # RMSProp's gamma is torch's alpha
    "rmsprop": (
        optim.rmsprop(lr=0.02, gamma=0.8, eps=0.05),
        torch.optim.RMSprop,
        {"lr": 0.02, "alpha": 0.8, "eps": 0.05},
    ),
    # Adadelta's lr is torch's extra scale of the rescaled gradient
    "adadelta": (
        optim.adadelta(rho=0.8, eps=1e-3, lr=0.7),
        torch.optim.Adadelta,
        {"lr": 0.7, "rho": 0.8, "eps": 1e-3},
    ),
    "adam": (
        optim.adam(lr=0.02, beta1=0.8, beta2=0.95, eps=0.05),
        torch.optim.Adam,
        {"lr": 0.02, "betas": (0.8, 0.95), "eps": 0.05},
    ),
    # L2 penalty added to the gradient, like torch.optim.Adam(weight_decay=...)
    "adam_weight_decay": (
        optim.adam(lr=0.02, beta1=0.8, beta2=0.95, eps=0.05, weight_decay=0.3),
        torch.optim.Adam,
        {"lr": 0.02, "betas": (0.8, 0.95), "eps": 0.05, "weight_decay": 0.3},
    ),
    # decoupled decay, like torch.optim.AdamW
    "adamw": (
        optim.adamw(lr=0.02, beta1=0.8, beta2=0.95, eps=0.05, weight_decay=0.3),
        torch.optim.AdamW,
        {"lr": 0.02, "betas": (0.8, 0.95), "eps": 0.05, "weight_decay": 0.3},
    ),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(TORCH_PAIRS))
def test_matches_torch_optim(case, seed):
    opt, torch_cls, torch_kwargs = TORCH_PAIRS[case]
    problem = make_problem(seed)
    ours = run_ours(opt, problem)
    assert_close(ours, run_torch(torch_cls, torch_kwargs, problem))
    moved = max((a - b).abs().max().item() for a, b in zip(ours, problem.params0, strict=True))
    assert moved > 0.05  # the comparison is not between two parameter sets that barely moved


def test_problem_separates_adam_l2_from_adamw():
    problem = make_problem()
    coupled = run_ours(TORCH_PAIRS["adam_weight_decay"][0], problem)
    decoupled = run_torch(torch.optim.AdamW, TORCH_PAIRS["adamw"][2], problem)
    gap = max((a - b).abs().max().item() for a, b in zip(coupled, decoupled, strict=True))
    assert gap > 1e-3


def test_default_hyperparameters_are_the_seeds():
    assert optim.adagrad(lr=0.1).hp == {"lr": 0.1, "eps": 1e-6}
    assert optim.rmsprop(lr=0.01).hp == {"lr": 0.01, "gamma": 0.9, "eps": 1e-6}
    assert optim.adadelta().hp == {"rho": 0.9, "eps": 1e-5, "lr": 1.0}
    assert optim.adam().hp == {
        "lr": 0.01,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-6,
        "weight_decay": 0.0,
    }
    assert optim.yogi().hp == {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}
    torch_adamw = torch.optim.AdamW([torch.zeros(1)]).defaults
    assert optim.adamw().hp == {
        "lr": torch_adamw["lr"],
        "beta1": torch_adamw["betas"][0],
        "beta2": torch_adamw["betas"][1],
        "eps": torch_adamw["eps"],
        "weight_decay": torch_adamw["weight_decay"],
    }


# ----- Yogi: no torch.optim class, so a hand-computed step and the published rule ----------------


def test_yogi_first_two_steps_by_hand():
    lr, eps = 0.1, 1e-3
    opt = optim.yogi(lr=lr, beta1=0.9, beta2=0.999, eps=eps)
    params = [torch.tensor([1.0, -2.0], dtype=torch.float64)]
    state = opt.init(params)
    # step 1, g = (2, 0.5): v starts at 0 < g^2, so v = 0.001 g^2 (as Adam's first step);
    # m_hat = g and v_hat = g^2, so each coordinate moves by lr * g / (|g| + eps).
    params, state = opt.update(
        [torch.tensor([2.0, 0.5], dtype=torch.float64)], state, params, opt.hp
    )
    x1 = [1.0 - lr * 2.0 / (2.0 + eps), -2.0 - lr * 0.5 / (0.5 + eps)]
    torch.testing.assert_close(params[0], torch.tensor(x1, dtype=torch.float64), rtol=1e-14, atol=0)
    # step 2, g = (-1, 0.01). Coordinate 1: v = 0.004 < g^2 = 1, so v grows by 0.001 * g^2.
    # Coordinate 2: v = 0.00025 > g^2 = 1e-4, so v shrinks by 0.001 * g^2 (Adam would pull it
    # towards g^2 by 0.001 * (v - g^2) instead).
    params, state = opt.update(
        [torch.tensor([-1.0, 0.01], dtype=torch.float64)], state, params, opt.hp
    )
    m = [0.9 * 0.2 + 0.1 * -1.0, 0.9 * 0.05 + 0.1 * 0.01]
    v = [0.004 + 0.001 * 1.0, 0.00025 - 0.001 * 1e-4]
    bc1, bc2 = 1 - 0.9**2, 1 - 0.999**2
    x2 = [x - lr * (mi / bc1) / (math.sqrt(vi / bc2) + eps) for x, mi, vi in zip(x1, m, v)]
    torch.testing.assert_close(params[0], torch.tensor(x2, dtype=torch.float64), rtol=1e-14, atol=0)
    torch.testing.assert_close(state.v[0], torch.tensor(v, dtype=torch.float64), rtol=1e-14, atol=0)
    assert state.step == 2


def yogi_reference(x0, grads, lr, beta1, beta2, eps):
    """Zaheer et al. (2018), Algorithm 2, one coordinate at a time, plus Adam's bias correction."""
    x = np.array(x0, dtype=np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, g in enumerate(grads, start=1):
        for i in range(x.size):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            g2 = g[i] * g[i]
            if v[i] > g2:
                v[i] -= (1 - beta2) * g2
            elif v[i] < g2:
                v[i] += (1 - beta2) * g2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            x[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return x


def test_yogi_matches_published_rule():
    gen = np.random.default_rng(0)
    x0 = gen.normal(size=6)
    # heavy-tailed gradients with zeros: v must both grow and shrink
    grads = gen.standard_t(df=2, size=(STEPS, 6)) * (gen.random((STEPS, 6)) > 0.2)
    hp = {"lr": 0.05, "beta1": 0.8, "beta2": 0.9, "eps": 1e-3}
    opt = optim.yogi(**hp)
    params = [torch.tensor(x0)]
    state = opt.init(params)
    for g in grads:
        params, state = opt.update([torch.tensor(g)], state, params, opt.hp)
    expected = yogi_reference(x0, grads, **hp)
    np.testing.assert_allclose(params[0].numpy(), expected, rtol=1e-11, atol=1e-12)


# ----- purity, hyperparameters passed per call, validation ---------------------------------------

ALL = [
    optim.sgd(0.1),
    optim.momentum(0.1, 0.9),
    optim.nesterov(0.1, 0.9),
    optim.adagrad(0.1),
    optim.rmsprop(0.1),
    optim.adadelta(),
    optim.adam(weight_decay=0.1),
    optim.adamw(weight_decay=0.1),
    optim.yogi(),
]


def _clone_tree(tree):
    if isinstance(tree, torch.Tensor):
        return tree.clone()
    if isinstance(tree, tuple | list):
        return [_clone_tree(x) for x in tree]
    return tree


def _assert_tree_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_tree_equal(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("opt", ALL, ids=lambda o: o.name)
def test_update_is_pure(opt):
    problem = make_problem()
    params = [p.clone() for p in problem.params0]
    state = opt.init(params)
    for t in range(3):
        grads = problem.grads(params, t)
        before = _clone_tree((grads, state, params))
        new_params, new_state = opt.update(grads, state, params, opt.hp)
        _assert_tree_equal((grads, state, params), before)
        assert all(not p.requires_grad for p in new_params)
        params, state = new_params, new_state


def test_hyperparameters_are_stored_as_floats():
    opt = optim.momentum(lr=1, momentum=0)
    assert opt.hp == {"lr": 1.0, "momentum": 0.0}
    assert all(type(v) is float for v in opt.hp.values())


def test_update_uses_the_hyperparameters_it_is_given():
    opt = optim.sgd(lr=0.1)
    params, grads = [torch.tensor([1.0, 2.0])], [torch.tensor([1.0, -1.0])]
    new_params, _ = opt.update(grads, opt.init(params), params, {**opt.hp, "lr": 0.5})
    torch.testing.assert_close(new_params[0], torch.tensor([0.5, 2.5]))


BAD = [
    (optim.sgd, {"lr": -0.1}, "lr"),
    (optim.sgd, {"lr": float("nan")}, "lr"),
    (optim.momentum, {"lr": -1.0, "momentum": 0.5}, "lr"),
    (optim.momentum, {"lr": 0.1, "momentum": 1.0}, "momentum"),
    (optim.momentum, {"lr": 0.1, "momentum": -0.1}, "momentum"),
    (optim.nesterov, {"lr": 0.1, "momentum": 1.5}, "momentum"),
    (optim.adagrad, {"lr": -0.1}, "lr"),
    (optim.adagrad, {"lr": 0.1, "eps": 0.0}, "eps"),
    (optim.rmsprop, {"lr": 0.1, "gamma": 1.0}, "gamma"),
    (optim.rmsprop, {"lr": 0.1, "gamma": -0.5}, "gamma"),
    (optim.rmsprop, {"lr": 0.1, "eps": -1e-6}, "eps"),
    (optim.adadelta, {"rho": 1.0}, "rho"),
    (optim.adadelta, {"eps": 0.0}, "eps"),
    (optim.adadelta, {"lr": -1.0}, "lr"),
    (optim.adam, {"lr": -0.01}, "lr"),
    (optim.adam, {"beta1": 1.0}, "beta1"),
    (optim.adam, {"beta2": -0.1}, "beta2"),
    (optim.adam, {"eps": 0.0}, "eps"),
    (optim.adam, {"weight_decay": -0.01}, "weight_decay"),
    (optim.adamw, {"beta2": 1.0}, "beta2"),
    (optim.adamw, {"weight_decay": -1.0}, "weight_decay"),
    (optim.yogi, {"beta1": 2.0}, "beta1"),
    (optim.yogi, {"eps": -1e-3}, "eps"),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "arg"), BAD, ids=[f"{f.__name__}-{a}-{kw[a]}" for f, kw, a in BAD]
)
def test_bad_hyperparameters_raise(factory, kwargs, arg):
    with pytest.raises(ValueError, match=rf"^Invalid {arg}: {re.escape(str(kwargs[arg]))} "):
        factory(**kwargs)


def test_boundary_hyperparameters_are_accepted():
    optim.sgd(lr=0.0)
    optim.momentum(lr=0.1, momentum=0.0)
    optim.adam(beta1=0.0, beta2=0.0, weight_decay=0.0)
    optim.adadelta(rho=0.0)


# ----- trace_2d ----------------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [0.1, 0.3, 0.6])
def test_trace_2d_gradient_descent_closed_form(eta):
    # f = x1^2 + 2 x2^2: gradient descent multiplies x1 by (1 - 2 eta) and x2 by (1 - 4 eta)
    trace = optim.trace_2d(optim.sgd(eta), lambda x1, x2: (2 * x1, 4 * x2), x0=(-5.0, -2.0))
    t = torch.arange(21, dtype=torch.float64)
    expected = torch.stack([-5.0 * (1 - 2 * eta) ** t, -2.0 * (1 - 4 * eta) ** t], dim=1)
    assert trace.shape == (21, 2) and trace.dtype == torch.float64
    torch.testing.assert_close(trace, expected, rtol=1e-12, atol=1e-12)


def test_trace_2d_accepts_floats_and_zero_steps():
    trace = optim.trace_2d(optim.sgd(0.1), lambda x1, x2: (1.0, 2.0), x0=(0.0, 0.0), steps=3)
    torch.testing.assert_close(
        trace,
        torch.tensor([[0.0, 0.0], [-0.1, -0.2], [-0.2, -0.4], [-0.3, -0.6]], dtype=torch.float64),
    )
    assert optim.trace_2d(optim.sgd(0.1), lambda x1, x2: (x1, x2), steps=0).shape == (1, 2)


@pytest.mark.parametrize(("kwargs", "arg"), [({"x0": (1.0,)}, "x0"), ({"steps": -1}, "steps")])
def test_trace_2d_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=f"^Invalid {arg}"):
        optim.trace_2d(optim.sgd(0.1), lambda x1, x2: (x1, x2), **kwargs)


def test_trace_1d_gradient_descent_on_square_is_geometric():
    path = optim.trace_1d(optim.sgd(lr=0.2), toy.square().grad, x0=10.0, steps=10)
    expected = 10.0 * 0.6 ** torch.arange(11, dtype=torch.float64)
    torch.testing.assert_close(path, expected)


def test_trace_1d_momentum_matches_torch_sgd():
    f = toy.x_cos()
    path = optim.trace_1d(optim.momentum(lr=0.3, momentum=0.7), f.grad, x0=3.0, steps=15)
    x = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.3, momentum=0.7)
    expected = [x.item()]
    for _ in range(15):
        opt.zero_grad()
        f.f(x).sum().backward()
        opt.step()
        expected.append(x.item())
    torch.testing.assert_close(path, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("make", [lambda: optim.sgd(lr=0.1), lambda: optim.momentum(0.1, 0.5)])
def test_scheduled_matches_torch_lambda_lr(make):
    q = toy.quadratic_2d()
    decay = lambda t: (1 + 0.1 * t) ** -0.5  # noqa: E731
    path = optim.trace_2d(optim.scheduled(make(), lambda t: 0.1 * decay(t)), q.grad, steps=12)
    x = torch.tensor([-5.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.1, momentum=make().hp.get("momentum", 0.0))
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
    expected = [x.detach().clone()]
    for _ in range(12):
        opt.zero_grad()
        q.f(x[0], x[1]).backward()
        opt.step()
        lr_sched.step()
        expected.append(x.detach().clone())
    torch.testing.assert_close(path, torch.stack(expected))


def test_scheduled_keeps_name_and_hyperparameters():
    opt = optim.scheduled(optim.momentum(lr=0.1, momentum=0.9), lambda t: 0.0)
    assert opt.name == "scheduled momentum"
    assert opt.hp == {"lr": 0.1, "momentum": 0.9}
    path = optim.trace_2d(opt, toy.quadratic_2d().grad, steps=3)
    assert torch.equal(path[-1], path[0])
