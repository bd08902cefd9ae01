"""Tests of the optimizers of today in d2lkit.optim against their reference implementations.

References: torch.optim (Adafactor, Muon, AdamW, RAdam, NAdam), and the test-only packages
lion-pytorch, schedulefree and pytorch-optimizer (pinned in requirements.txt). Every run is in
float64 over many steps on a problem whose gradients depend on the parameters, and the states are
compared too where the reference keeps them under a name.
"""

import importlib
import math

import pytest
import torch

from d2lkit import optim

lion_pytorch = pytest.importorskip("lion_pytorch")
schedulefree = pytest.importorskip("schedulefree")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

STEPS = 60
SHAPES = [(6, 4), (3, 5), (5,), ()]


def make_problem(seed: int = 0, shapes=SHAPES):
    """Return (params0, grad_fn): a random quadratic with fresh noise at every step, float64."""
    gen = torch.Generator().manual_seed(seed)

    def draw(shape, scale=1.0):
        return scale * torch.randn(shape, generator=gen, dtype=torch.float64)

    params0 = [draw(s) for s in shapes]
    curvature = [0.1 + 2.0 * torch.rand(s, generator=gen, dtype=torch.float64) for s in shapes]
    center = [draw(s) for s in shapes]
    noise = [[draw(s, 0.5) for s in shapes] for _ in range(STEPS)]

    def grads(params, t):
        return [c * (p.detach() - z) + n
                for p, c, z, n in zip(params, curvature, center, noise[t], strict=True)]

    return params0, grads


def run_ours(opt, problem, steps=STEPS):
    params0, grads = problem
    params = [p.clone() for p in params0]
    state = opt.init(params)
    for t in range(steps):
        params, state = opt.update(grads(params, t), state, params, opt.hp)
    return params, state


def run_torch(make, problem, steps=STEPS):
    """Run ``make(params)`` (a torch optimizer, or a list of them) for ``steps`` steps."""
    params0, grads = problem
    params = [p.clone().requires_grad_() for p in params0]
    opts = make(params)
    opts = opts if isinstance(opts, list) else [opts]
    for t in range(steps):
        for p, g in zip(params, grads(params, t), strict=True):
            p.grad = g
        for o in opts:
            o.step()
    return params, opts


def assert_close(ours, ref, rtol=1e-10, atol=1e-12):
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=rtol, atol=atol)


def assert_moved(ours, problem):
    moved = max((a - b).abs().max().item() for a, b in zip(ours, problem[0], strict=True))
    assert moved > 0.05


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("wd", [0.0, 0.2])
def test_adafactor_matches_torch(seed, wd):
    problem = make_problem(seed)
    ours, state = run_ours(optim.adafactor(lr=0.05, eps2=1e-2, weight_decay=wd), problem)
    ref, (opt,) = run_torch(
        lambda ps: torch.optim.Adafactor(ps, lr=0.05, eps=(None, 1e-2), weight_decay=wd), problem
    )
    assert_close(ours, ref)
    assert_moved(ours, problem)
    for i, p in enumerate(ref):
        s = opt.state[p]
        if p.dim() > 1:
            torch.testing.assert_close(state.row[i], s["row_var"], rtol=1e-10, atol=1e-14)
            torch.testing.assert_close(state.col[i], s["col_var"], rtol=1e-10, atol=1e-14)
        else:
            torch.testing.assert_close(state.v[i], s["variance"], rtol=1e-10, atol=1e-14)
    assert state.step == STEPS


def test_adafactor_state_is_factored():
    params = [torch.zeros(100, 30), torch.zeros(30)]
    state = optim.adafactor().init(params)
    assert optim.state_bytes(state) == 4 * (100 + 30 + 30)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("wd", [0.0, 0.5])
def test_lion_matches_lion_pytorch(seed, wd):
    problem = make_problem(seed)
    ours, state = run_ours(optim.lion(lr=0.01, beta1=0.8, beta2=0.95, weight_decay=wd), problem)
    ref, (opt,) = run_torch(
        lambda ps: lion_pytorch.Lion(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=wd), problem
    )
    assert_close(ours, ref)
    assert_close(state.m, [opt.state[p]["exp_avg"] for p in ref])
    assert_moved(ours, problem)


def test_lion_moves_every_coordinate_by_lr():
    opt = optim.lion(lr=0.1)
    params = [torch.zeros(5, dtype=torch.float64)]
    g = torch.tensor([3.0, -1e-6, 2.0, -50.0, 0.0], dtype=torch.float64)
    new, _ = opt.update([g], opt.init(params), params, opt.hp)
    torch.testing.assert_close(new[0], -0.1 * torch.sign(g))


def test_newton_schulz_is_torchs_iteration():
    from torch.optim import _muon

    G = torch.randn(7, 12, generator=torch.Generator().manual_seed(0))
    for M in (G, G.T):
        ref = _muon._zeropower_via_newtonschulz(M, optim.muon().hp["ns_coefficients"], 5, 1e-7)
        assert torch.equal(optim.newton_schulz(M.bfloat16()), ref)


def test_newton_schulz_flattens_singular_values():
    G = torch.randn(32, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    G = G @ torch.diag(torch.logspace(-2, 1, 16, dtype=torch.float64))
    s_before = torch.linalg.svdvals(G)
    s_after = torch.linalg.svdvals(optim.newton_schulz(G, steps=10))
    assert s_before.max() / s_before.min() > 100
    assert s_after.min() > 0.6 and s_after.max() < 1.25
    # the singular vectors stay: O is U f(S) V^T
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    ortho = optim.newton_schulz(G, steps=10)
    core = U.T @ ortho @ Vh.T
    torch.testing.assert_close(core, torch.diag(torch.diagonal(core)), atol=1e-10, rtol=0)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_muon_matches_torch(monkeypatch, nesterov, adjust):
    """torch.optim.Muon on the matrices (its bfloat16 Newton-Schulz swapped for the float64
    iteration, checked equal to torch's above) and torch.optim.AdamW on the rest."""
    from torch.optim import _muon

    monkeypatch.setattr(
        _muon, "_zeropower_via_newtonschulz",
        lambda G, coefficients, steps, eps: optim.newton_schulz(G, steps, coefficients, eps),
    )
    problem = make_problem(0)
    ours, state = run_ours(
        optim.muon(lr=0.03, momentum=0.9, nesterov=nesterov, weight_decay=0.1, adjust_lr=adjust,
                   adam_lr=0.02, beta1=0.8, beta2=0.95, adam_eps=0.05, adam_weight_decay=0.3),
        problem,
    )

    def make(ps):
        mats = [p for p in ps if p.dim() == 2]
        rest = [p for p in ps if p.dim() != 2]
        return [
            torch.optim.Muon(mats, lr=0.03, momentum=0.9, nesterov=nesterov, weight_decay=0.1,
                             adjust_lr_fn=adjust),
            torch.optim.AdamW(rest, lr=0.02, betas=(0.8, 0.95), eps=0.05, weight_decay=0.3),
        ]

    ref, (muon_opt, adamw_opt) = run_torch(make, problem)
    assert_close(ours, ref)
    assert_moved(ours, problem)
    for i, p in enumerate(ref):
        if p.dim() == 2:
            torch.testing.assert_close(state.buffer[i], muon_opt.state[p]["momentum_buffer"])
    rest = [p for p in ref if p.dim() != 2]
    assert_close(state.adam.v, [adamw_opt.state[p]["exp_avg_sq"] for p in rest])
    assert state.adam.step == STEPS


def test_muon_leaves_the_listed_matrices_to_adamw(monkeypatch):
    """With ``adamw_matrices``, the listed matrices get torch.optim.AdamW, the others Muon."""
    from torch.optim import _muon

    monkeypatch.setattr(
        _muon, "_zeropower_via_newtonschulz",
        lambda G, coefficients, steps, eps: optim.newton_schulz(G, steps, coefficients, eps),
    )
    problem = make_problem(0)
    last = max(i for i, p in enumerate(problem[0]) if p.dim() == 2)
    ours, state = run_ours(optim.muon(lr=0.03, adam_lr=0.02, adamw_matrices=[last]), problem)

    def make(ps):
        mats = [p for i, p in enumerate(ps) if p.dim() == 2 and i != last]
        rest = [p for i, p in enumerate(ps) if p.dim() != 2 or i == last]
        return [torch.optim.Muon(mats, lr=0.03, weight_decay=0.1),
                torch.optim.AdamW(rest, lr=0.02, weight_decay=0.01)]

    ref, _ = run_torch(make, problem)
    assert_close(ours, ref)
    assert state.buffer[last].numel() == 0


def test_muon_refuses_adamw_positions_that_are_not_matrices():
    params = [p.clone() for p in make_problem(0)[0]]
    vector = next(i for i, p in enumerate(params) if p.dim() != 2)
    for position, what in ((vector, "of shape"), (len(params), "absent")):
        with pytest.raises(ValueError, match=rf"Invalid adamw_matrices: .*{what}"):
            optim.muon(adamw_matrices=[position]).init(params)


def test_muon_bfloat16_torch_is_close():
    """Unpatched torch (bfloat16 iteration) agrees with the float64 one to bfloat16 accuracy."""
    problem = make_problem(1, shapes=[(16, 8)])
    ours, _ = run_ours(optim.muon(lr=0.01, weight_decay=0.0), problem, steps=10)
    ref, _ = run_torch(lambda ps: torch.optim.Muon(ps, lr=0.01, weight_decay=0.0), problem, 10)
    moved = (ours[0] - problem[0][0]).abs().max()
    assert (ours[0] - ref[0].detach()).abs().max() < 0.05 * moved


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "warmup_steps": 10}])
def test_schedule_free_sgd_matches_reference(seed, kwargs):
    problem = make_problem(seed)
    ours, state = run_ours(optim.schedule_free_sgd(lr=0.05, momentum=0.8, **kwargs), problem)
    ref, (opt,) = run_torch(
        lambda ps: schedulefree.SGDScheduleFreeReference(ps, lr=0.05, momentum=0.8, **kwargs),
        problem,
    )
    assert_close(ours, ref)
    assert_close(state.z, [opt.state[p]["z"] for p in ref])
    opt.eval()  # the reference's eval() copies x into the parameters
    assert_close(optim.eval_params(state), ref)
    assert_moved(ours, problem)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.2, "warmup_steps": 10, "r": 1.0}])
def test_schedule_free_adamw_matches_reference(seed, kwargs):
    problem = make_problem(seed)
    hp = {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3, **kwargs}
    ours, state = run_ours(
        optim.schedule_free_adamw(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-3, **kwargs), problem
    )

    def make(ps):
        opt = schedulefree.AdamWScheduleFreeReference(ps, **hp)
        opt.train()  # this one starts in eval mode
        return opt

    ref, (opt,) = run_torch(make, problem)
    assert_close(ours, ref)
    assert_close(state.v, [opt.state[p]["exp_avg_sq"] for p in ref])
    opt.eval()
    assert_close(optim.eval_params(state), ref)
    assert_moved(ours, problem)


def test_schedule_free_sgd_averages_uniformly():
    """With r = 0 and a constant rate, x is the plain mean of z_1..z_t (Polyak averaging)."""
    opt = optim.schedule_free_sgd(lr=0.1, momentum=0.5)
    params = [torch.tensor([1.0], dtype=torch.float64)]
    state, zs = opt.init(params), []
    for t in range(5):
        params, state = opt.update([torch.tensor([float(t + 1)], dtype=torch.float64)], state,
                                   params, opt.hp)
        zs.append(state.z[0])
    torch.testing.assert_close(state.x[0], torch.stack(zs).mean(0))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", [{"nesterov": False}, {"nesterov": True}])
def test_lars_matches_pytorch_optimizer(seed, kwargs):
    problem = make_problem(seed)
    hp = {"lr": 0.5, "momentum": 0.8, "weight_decay": 0.1, "trust_coefficient": 0.02, **kwargs}
    ours, state = run_ours(optim.lars(**hp), problem)
    ref, (opt,) = run_torch(lambda ps: pytorch_optimizer.LARS(ps, foreach=False, **hp), problem)
    assert_close(ours, ref)
    assert_close(state.velocity, [opt.state[p]["momentum_buffer"] for p in ref])
    assert_moved(ours, problem)


def test_lars_step_is_a_fraction_of_the_weight_norm():
    opt = optim.lars(lr=1.0, momentum=0.0, trust_coefficient=0.01)
    w = torch.randn(4, 3, dtype=torch.float64)
    for scale in (1e-3, 1e3):  # whatever the gradient's size
        g = scale * torch.randn(4, 3, dtype=torch.float64)
        new, _ = opt.update([g], opt.init([w]), [w], opt.hp)
        assert math.isclose(float((new[0] - w).norm()), 0.01 * float(w.norm()), rel_tol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_lamb_without_bias_correction_matches_pytorch_optimizer(seed):
    problem = make_problem(seed)
    ours, state = run_ours(
        optim.lamb(lr=0.02, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0.1,
                   bias_correction=False), problem
    )
    ref, (opt,) = run_torch(
        lambda ps: pytorch_optimizer.Lamb(ps, lr=0.02, betas=(0.8, 0.95), eps=1e-3,
                                          weight_decay=0.1, weight_decouple=False,
                                          adam_debias=True, max_grad_norm=0.0, foreach=False),
        problem,
    )
    assert_close(ours, ref)
    assert_close(state.m, [opt.state[p]["exp_avg"] for p in ref])
    assert_close(state.v, [opt.state[p]["exp_avg_sq"] for p in ref])
    assert_moved(ours, problem)


def test_lamb_paper_steps_by_hand():
    """Algorithm 2 of You et al. (2020), two steps, one tensor, computed line by line."""
    b1, b2, eps, lam, lr = 0.9, 0.99, 1e-6, 0.05, 0.1
    opt = optim.lamb(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=lam)
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    gs = [torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(2)]
    params, state = [w], opt.init([w])
    m = v = torch.zeros_like(w)
    for t, g in enumerate(gs, start=1):
        params, state = opt.update([g], state, params, opt.hp)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps) + lam * w
        w = w - lr * min(float(w.norm()), 10.0) / (float(r.norm()) + eps) * r
        torch.testing.assert_close(params[0], w, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.2}, {"weight_decay": 0.2,
                                                                "decoupled": True}])
def test_radam_matches_torch(seed, kwargs):
    problem = make_problem(seed)
    torch_kw = {k if k != "decoupled" else "decoupled_weight_decay": v for k, v in kwargs.items()}
    hp = {"lr": 0.02, "beta1": 0.8, "beta2": 0.9, "eps": 1e-3}
    ours, state = run_ours(optim.radam(**hp, **kwargs), problem)
    ref, (opt,) = run_torch(lambda ps: torch.optim.RAdam(
        ps, lr=0.02, betas=(0.8, 0.9), eps=1e-3, **torch_kw), problem)
    assert_close(ours, ref)
    assert_close(state.v, [opt.state[p]["exp_avg_sq"] for p in ref])
    assert_moved(ours, problem)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.2}, {"weight_decay": 0.2,
                                                                "decoupled": True}])
def test_nadam_matches_torch(seed, kwargs, monkeypatch):
    # torch keeps mu_product in the default dtype (float32 unless changed): make it float64
    nadam_module = importlib.import_module(torch.optim.NAdam.__module__)
    monkeypatch.setattr(nadam_module, "_get_scalar_dtype", lambda: torch.float64)
    problem = make_problem(seed)
    torch_kw = {k if k != "decoupled" else "decoupled_weight_decay": v for k, v in kwargs.items()}
    ours, state = run_ours(
        optim.nadam(lr=0.02, beta1=0.8, beta2=0.9, eps=1e-3, momentum_decay=0.01, **kwargs),
        problem,
    )
    ref, (opt,) = run_torch(lambda ps: torch.optim.NAdam(
        ps, lr=0.02, betas=(0.8, 0.9), eps=1e-3, momentum_decay=0.01, **torch_kw), problem)
    assert_close(ours, ref)
    assert_close(state.m, [opt.state[p]["exp_avg"] for p in ref])
    assert math.isclose(state.mu_product, float(opt.state[ref[0]]["mu_product"]), rel_tol=1e-12)
    assert_moved(ours, problem)


def test_state_bytes_table():
    """Bytes of state per parameter of a float32 matrix: the memory table of the book."""
    W = [torch.zeros(256, 128)]
    n = W[0].numel()
    per_param = {name: optim.state_bytes(opt.init(W)) / n for name, opt in [
        ("sgd", optim.sgd(0.1)), ("momentum", optim.momentum(0.1, 0.9)),
        ("adamw", optim.adamw()), ("lion", optim.lion()), ("muon", optim.muon()),
        ("adafactor", optim.adafactor()),
    ]}
    assert per_param["sgd"] == 0 and per_param["adamw"] == 8
    assert per_param["lion"] == per_param["muon"] == per_param["momentum"] == 4
    assert per_param["adafactor"] == 4 * (256 + 128) / n


@pytest.mark.parametrize(
    ("factory", "kwargs", "error"),
    [
        (optim.lion, {"lr": -1.0}, ValueError),
        (optim.lion, {"beta1": 1.0}, ValueError),
        (optim.adafactor, {"beta2_decay": 0.5}, ValueError),
        (optim.adafactor, {"eps1": "tiny"}, TypeError),
        (optim.adafactor, {"d": 0.0}, ValueError),
        (optim.muon, {"ns_steps": 2.0}, TypeError),
        (optim.muon, {"adjust_lr": "spectral"}, ValueError),
        (optim.muon, {"ns_coefficients": (1.0, 2.0)}, ValueError),
        (optim.muon, {"nesterov": 1}, TypeError),
        (optim.muon, {"adam_lr": float("nan")}, ValueError),
        (optim.schedule_free_sgd, {"warmup_steps": -1}, ValueError),
        (optim.schedule_free_adamw, {"eps": 0.0}, ValueError),
        (optim.lars, {"trust_coefficient": 0.0, "lr": 0.1}, ValueError),
        (optim.lamb, {"bias_correction": "yes"}, TypeError),
        (optim.radam, {"beta2": 1.5}, ValueError),
        (optim.nadam, {"momentum_decay": -1.0}, ValueError),
    ],
)
def test_bad_hyperparameters_raise(factory, kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=f"Invalid {name}"):
        factory(**kwargs)


def test_eval_params_needs_schedule_free_state():
    with pytest.raises(TypeError, match="Invalid state"):
        optim.eval_params(optim.adamw().init([torch.zeros(2)]))
