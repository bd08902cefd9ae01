import math

import pytest
import torch
from torch import nn

from d2lkit.noise_scale import (
    GradSqNorms,
    NoiseScaleTracker,
    fit_tradeoff,
    grad_sq_norms,
    noise_components,
)

# Linear regression with x ~ N(0, I_d), y = x.w* + sigma * eps and loss (x.w - y)^2 / 2.
# With delta = w - w*, the per-example gradient is g = x (x.delta - sigma eps), so
#   G = E g = delta,  Sigma = Cov g = delta delta^T + (|delta|^2 + sigma^2) I   (Isserlis),
#   |G|^2 = |delta|^2,  tr(Sigma) = (d + 1) |delta|^2 + d sigma^2.
D, SIGMA = 5, 0.5
W_STAR = torch.linspace(-1.0, 1.0, D, dtype=torch.float64)
DELTA = torch.tensor([0.3, -0.2, 0.1, 0.4, -0.1], dtype=torch.float64)
TRUE_G2 = float(DELTA @ DELTA)
TRUE_TR = (D + 1) * TRUE_G2 + D * SIGMA**2


def model():
    net = nn.Linear(D, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(W_STAR + DELTA)
    return net


def per_example(y_hat, y):
    return 0.5 * (y_hat.squeeze(-1) - y) ** 2


def draw(n, g):
    X = torch.randn(n, D, generator=g, dtype=torch.float64)
    return X, X @ W_STAR + SIGMA * torch.randn(n, generator=g, dtype=torch.float64)


def test_components_invert_the_expectation_exactly():
    for b_small, b_big in [(1, 2), (4, 64), (32, 1024)]:
        est = noise_components(TRUE_G2 + TRUE_TR / b_small, TRUE_G2 + TRUE_TR / b_big,
                               b_small, b_big)
        assert est.grad_sq == pytest.approx(TRUE_G2, rel=1e-12)
        assert est.trace_cov == pytest.approx(TRUE_TR, rel=1e-12)


def test_grad_sq_norms_match_closed_form_gradients():
    g = torch.Generator().manual_seed(0)
    X, y = draw(24, g)
    net = model()
    w = W_STAR + DELTA
    grad = lambda Xb, yb: Xb.T @ (Xb @ w - yb) / len(yb)  # noqa: E731
    small = sum(float(grad(X[i : i + 6], y[i : i + 6]).pow(2).sum()) for i in range(0, 24, 6)) / 4
    norms = grad_sq_norms(net, per_example, (X, y), b_small=6)
    assert norms == pytest.approx((small, float(grad(X, y).pow(2).sum()), 6, 24), rel=1e-12)
    assert net.weight.grad is None


def test_estimates_are_unbiased():
    g = torch.Generator().manual_seed(1)
    net = model()
    est = torch.tensor([noise_components(*grad_sq_norms(net, per_example, draw(64, g), 8))
                        for _ in range(300)], dtype=torch.float64)
    mean, se = est.mean(0), est.std(0) / math.sqrt(len(est))
    assert abs(mean[0] - TRUE_G2) < 4 * se[0]
    assert abs(mean[1] - TRUE_TR) < 4 * se[1]
    # and the test has power: the standard errors are small compared with the true values
    assert se[0] < 0.05 * TRUE_G2 and se[1] < 0.05 * TRUE_TR


def test_tracker_converges_to_the_true_noise_scale():
    g = torch.Generator().manual_seed(2)
    net = model()
    tracker = NoiseScaleTracker(beta=0.99)
    assert math.isnan(tracker.b_simple)
    for _ in range(300):
        tracker.update(grad_sq_norms(net, per_example, draw(64, g), 8))
    assert tracker.b_simple == pytest.approx(TRUE_TR / TRUE_G2, rel=0.15)


def test_tracker_first_update_is_the_plain_estimate():
    norms = GradSqNorms(3.0, 1.0, 4, 64)
    tracker = NoiseScaleTracker(beta=0.9)
    tracker.update(norms)
    est = noise_components(*norms)
    assert tracker.grad_sq == pytest.approx(est.grad_sq)
    assert tracker.trace_cov == pytest.approx(est.trace_cov)
    assert tracker.b_simple == pytest.approx(est.trace_cov / est.grad_sq)


def test_tracker_reports_inf_while_gradient_estimate_is_not_positive():
    tracker = NoiseScaleTracker()
    # |G_big|^2 far below |G_small|^2 / 16: the |G|^2 estimate (64 * 0 - 4 * 10) / 60 is negative
    tracker.update(GradSqNorms(10.0, 0.0, 4, 64))
    assert tracker.grad_sq == pytest.approx(-40 / 60)
    assert tracker.b_simple == math.inf


def test_fit_tradeoff_recovers_the_hyperbola():
    s_min, b_crit = 120.0, 300.0
    bs = [8, 32, 128, 512, 2048]
    steps = [s_min * (1 + b_crit / b) for b in bs]
    fit = fit_tradeoff(bs, steps)
    assert fit.s_min == pytest.approx(s_min, rel=1e-10)
    assert fit.e_min == pytest.approx(s_min * b_crit, rel=1e-10)
    assert fit.b_crit == pytest.approx(b_crit, rel=1e-10)


def test_validation():
    with pytest.raises(ValueError, match="Invalid b_big: 4"):
        noise_components(1.0, 1.0, 4, 4)
    with pytest.raises(ValueError, match="Invalid b_small: 0"):
        noise_components(1.0, 1.0, 0, 4)
    with pytest.raises(ValueError, match="Invalid b_small: 5"):
        grad_sq_norms(model(), per_example, draw(12, torch.Generator()), 5)
    with pytest.raises(ValueError, match=r"Invalid beta: 1\.0"):
        NoiseScaleTracker(beta=1.0)
    with pytest.raises(ValueError, match="Invalid data"):
        fit_tradeoff([8], [10])
    with pytest.raises(ValueError, match="Invalid data"):
        fit_tradeoff([8, 0], [10, 5])
