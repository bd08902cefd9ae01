import pytest
import torch
from torch import nn

from d2lkit import data, optim, train


def _least_squares_loss(X: torch.Tensor, y: torch.Tensor) -> float:
    A = torch.cat([X, torch.ones(len(X), 1)], dim=1).double()
    solution = torch.linalg.lstsq(A, y.double()[:, None]).solution
    return float(((A @ solution - y.double()[:, None]) ** 2).mean() / 2)


def test_airfoil_scratch_approaches_least_squares(capsys):
    torch.manual_seed(0)
    data_iter, dim = data.airfoil_iter(batch_size=10)
    history = train.train_airfoil_scratch(optim.sgd(0.05), data_iter, dim, num_epochs=2,
                                          animate=False)
    best = _least_squares_loss(*data.airfoil())
    assert best <= history.final_loss < best + 0.01
    assert history.losses[0] > history.final_loss
    assert history.epochs[-1] == 2.0
    assert history.times == sorted(history.times)
    assert capsys.readouterr().out.startswith(f"loss: {history.final_loss:.3f}, ")


def test_history_queries():
    history = train.History(epochs=[0.5, 1.0, 1.5], times=[0.1, 0.2, 0.3],
                            losses=[0.30, 0.26, 0.24])
    assert history.loss_at(1.0) == 0.26 and history.loss_at(1.2) == 0.24
    assert history.first_reaching(0.26) == (1.0, 0.2)
    assert history.first_reaching(0.2) is None


def test_airfoil_concise_matches_scratch_sgd():
    data_iter, dim = data.airfoil_iter(batch_size=100, seed=4)
    torch.manual_seed(1)
    scratch = train.train_airfoil_scratch(optim.sgd(0.1), data_iter, dim, 2, animate=False)
    data_iter, dim = data.airfoil_iter(batch_size=100, seed=4)
    torch.manual_seed(1)
    concise = train.train_airfoil_concise(torch.optim.SGD, {"lr": 0.1}, data_iter, 2,
                                          animate=False)
    # Same data order, different (tiny) random initial weights: the curves agree closely.
    assert concise.final_loss == pytest.approx(scratch.final_loss, abs=2e-3)


def test_airfoil_rejects_no_epochs():
    data_iter, dim = data.airfoil_iter(batch_size=100)
    with pytest.raises(ValueError, match="epochs"):
        train.train_airfoil_scratch(optim.sgd(0.1), data_iter, dim, 0, animate=False)


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centers[y] + torch.randn(n, 2, generator=gen), y


def test_classifier_learns_and_records(capsys):
    torch.manual_seed(0)
    train_iter = data.MinibatchIter(*_blobs(300, 0), batch_size=32)
    test_iter = data.MinibatchIter(*_blobs(200, 1), batch_size=100, shuffle=False)
    net = nn.Linear(2, 3)
    steps = []
    history = train.train_classifier(
        net, train_iter, test_iter, 3, torch.optim.SGD(net.parameters(), lr=0.1),
        on_batch=lambda step, loss: steps.append(step), animate=False)
    assert history.test_acc[-1] > 0.95
    assert history.train_loss[-1] < history.train_loss[0]
    assert steps == list(range(3 * len(train_iter)))
    assert len(history.epoch_time) == 3 and history.lr == [0.1] * 3
    assert "epoch 3: train loss" in capsys.readouterr().out


def test_classifier_evaluate_matches_direct_computation():
    X, y = _blobs(50, 2)
    net = nn.Linear(2, 3)
    loss, acc = train.evaluate(net, data.MinibatchIter(X, y, batch_size=7, shuffle=False))
    with torch.no_grad():
        logits = net(X)
    assert loss == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-6)
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))


def test_classifier_torch_scheduler_and_plateau():
    train_iter = data.MinibatchIter(*_blobs(64, 0), batch_size=32)
    test_iter = data.MinibatchIter(*_blobs(64, 1), batch_size=64)
    net = nn.Linear(2, 3)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = train.train_classifier(net, train_iter, test_iter, 3, opt, schedule=step_lr,
                                     animate=False, verbose=False)
    assert history.lr == [1.0, 0.5, 0.25]
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    opt.param_groups[0]["lr"] = 1e-12  # no progress: the test loss never improves
    history = train.train_classifier(net, train_iter, test_iter, 3, opt, schedule=plateau,
                                     animate=False, verbose=False)
    assert history.lr[1] == pytest.approx(history.lr[0] * 0.5)


def test_classifier_rejects_bad_arguments():
    it = data.MinibatchIter(*_blobs(8, 0), batch_size=4)
    net = nn.Linear(2, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="schedule_unit"):
        train.train_classifier(net, it, it, 1, opt, schedule_unit="batch", animate=False)
    with pytest.raises(ValueError, match="epochs"):
        train.train_classifier(net, it, it, 0, opt, animate=False)
