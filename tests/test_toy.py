"""Closed-form derivatives of d2lkit.toy checked against torch.autograd."""

import math

import pytest
import torch

from d2lkit import toy

POINTS = torch.linspace(-12.0, 12.0, 49, dtype=torch.float64)


def autograd_derivatives(f, x):
    """Return f'(x) and f''(x) at each entry of x, by autograd."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    return g.detach(), h


@pytest.mark.parametrize("objective", [toy.square(), toy.x_cos(), toy.x_cos(c=1.3)])
def test_1d_derivatives_match_autograd(objective):
    g, h = autograd_derivatives(objective.f, POINTS)
    torch.testing.assert_close(objective.grad(POINTS), g)
    torch.testing.assert_close(objective.hess(POINTS), h)


def test_x_cos_default_frequency_and_value():
    x = torch.tensor([2.0], dtype=torch.float64)
    expected = 2.0 * math.cos(0.15 * math.pi * 2.0)
    assert toy.x_cos().f(x).item() == pytest.approx(expected)


@pytest.mark.parametrize(
    "q", [toy.quadratic_2d(), toy.ill_conditioned_2d(), toy.quadratic_2d(3.0, 0.5)]
)
def test_2d_gradient_matches_autograd(q):
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(q.f(x[:, 0], x[:, 1]).sum(), x)
    g1, g2 = q.grad(x[:, 0].detach(), x[:, 1].detach())
    torch.testing.assert_close(torch.stack((g1, g2), dim=-1), g)


def test_2d_coefficients_and_eigenvalues():
    assert (toy.quadratic_2d().a1, toy.quadratic_2d().a2) == (1.0, 2.0)
    q = toy.ill_conditioned_2d()
    x = torch.tensor([1.0, 1.0], dtype=torch.float64)
    hess = torch.autograd.functional.hessian(lambda z: q.f(z[0], z[1]), x)
    torch.testing.assert_close(
        torch.linalg.eigvalsh(hess), torch.tensor(q.eigenvalues(), dtype=torch.float64)
    )


def test_2d_value_on_a_grid():
    x1, x2 = torch.meshgrid(torch.arange(3.0), torch.arange(2.0), indexing="ij")
    torch.testing.assert_close(toy.quadratic_2d().f(x1, x2), x1**2 + 2 * x2**2)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: toy.x_cos(c=0.0), "Invalid frequency c: 0.0"),
        (lambda: toy.quadratic_2d(a1=-1.0), "Invalid coefficient a1: -1.0"),
        (lambda: toy.quadratic_2d(a2=0.0), "Invalid coefficient a2: 0.0"),
        (lambda: toy.with_noise(toy.quadratic_2d().grad, sigma=-0.5), "Invalid noise level"),
    ],
)
def test_invalid_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_noise_is_seeded_unbiased_and_scaled():
    grad = toy.quadratic_2d().grad
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    a, b = toy.with_noise(grad, sigma=0.5, seed=3), toy.with_noise(grad, sigma=0.5, seed=3)
    draws = torch.stack([torch.stack(a(*x)) for _ in range(4000)])
    torch.testing.assert_close(draws, torch.stack([torch.stack(b(*x)) for _ in range(4000)]))
    assert draws.dtype == torch.float64
    torch.testing.assert_close(draws.mean(0), torch.stack(grad(*x)), atol=0.03, rtol=0)
    sigma = torch.full((2,), 0.5, dtype=torch.float64)
    torch.testing.assert_close(draws.std(0), sigma, atol=0.02, rtol=0)
    assert not torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("objective", [toy.cosh(), toy.cosh(c=1.7)])
def test_cosh_derivatives_match_autograd(objective):
    g, h = autograd_derivatives(objective.f, POINTS / 4)
    torch.testing.assert_close(objective.grad(POINTS / 4), g)
    torch.testing.assert_close(objective.hess(POINTS / 4), h)


def test_cosh_rejects_bad_frequency():
    with pytest.raises(ValueError, match="-1"):
        toy.cosh(c=-1.0)


def test_double_well_gradient_and_hessian_match_autograd():
    w = toy.double_well_2d()
    for point in [(0.0, 0.0), (0.3, -0.7), (-1.2, 1.0)]:
        x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(w.f(x[0], x[1]), x)
        torch.testing.assert_close(torch.stack(w.grad(*x.detach())), g)
        hess = torch.autograd.functional.hessian(lambda z: w.f(z[0], z[1]), x.detach())
        torch.testing.assert_close(w.hessian(*point), hess)
    eigenvalues = torch.linalg.eigvalsh(w.hessian(0.0, 0.0))
    assert eigenvalues[0] < 0 < eigenvalues[1]
