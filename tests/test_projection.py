"""Projection onto a ball and projected gradient descent, checked against closed forms."""

import pytest
import torch

from d2lkit.projection import project_ball, projected_gd


def test_projection_is_the_closest_point_of_the_ball():
    gen = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(50, 4, generator=gen, dtype=torch.float64)
    center = torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64)
    p = project_ball(x, 1.5, center)
    norms = torch.linalg.vector_norm(p - center, dim=-1)
    assert bool((norms <= 1.5 + 1e-12).all())
    inside = torch.linalg.vector_norm(x - center, dim=-1) <= 1.5
    torch.testing.assert_close(p[inside], x[inside])
    # no point of the ball (sampled) is closer to x than its projection
    ball = center + project_ball(3 * torch.randn(2000, 4, generator=gen, dtype=torch.float64), 1.5)
    dist_to_p = torch.linalg.vector_norm(x - p, dim=-1)
    dist_to_ball = torch.cdist(x, ball).min(dim=1).values
    assert bool((dist_to_p <= dist_to_ball + 1e-12).all())


def test_projected_gd_finds_the_constrained_minimum():
    # min ||x - a||^2 over the unit ball: the answer is a / ||a|| when ||a|| > 1.
    a = torch.tensor([3.0, 4.0], dtype=torch.float64)
    path = projected_gd(lambda x: 2 * (x - a), lambda x: project_ball(x, 1.0),
                        torch.zeros(2), lr=0.1, steps=100)
    torch.testing.assert_close(path[-1], a / 5)
    assert bool((torch.linalg.vector_norm(path, dim=-1) <= 1 + 1e-12).all())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="radius"):
        project_ball(torch.zeros(2), -1.0)
    with pytest.raises(ValueError, match="lr"):
        projected_gd(lambda x: x, lambda x: x, torch.zeros(2), lr=0.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        projected_gd(lambda x: x, lambda x: x, torch.zeros(2), lr=0.1, steps=-1)
