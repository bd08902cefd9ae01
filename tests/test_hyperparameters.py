"""Every public function of d2lkit.optim, .sched, .accumulate and .train refuses bad arguments.

``ROWS`` says, for each public function of those modules, what each of its parameters is (its
kind); each kind comes with the bad values it must refuse and the exception each one raises.
The functions are found from the modules themselves: a new public function, or a new parameter
of an existing one, without a row makes ``test_every_public_function_has_a_row`` fail and say
which row to add. Every refusal must be a ``TypeError`` or ``ValueError`` whose message starts
with ``Invalid <parameter>`` and shows the bad value with ``repr``.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from d2lkit import accumulate, checks, data, optim, sched, train

MODULES = (optim, sched, accumulate, train)
NAN, INF = math.nan, math.inf

# Bad values of each kind of parameter, with the exception each must raise.
NOT_A_NUMBER = [("0.1", TypeError), (None, TypeError), (torch.tensor(0.1), TypeError),
                (True, TypeError)]
NOT_FINITE = [(NAN, ValueError), (INF, ValueError), (-INF, ValueError)]
REAL = NOT_A_NUMBER + NOT_FINITE


def _ints(minimum: int) -> list[tuple[Any, type[Exception]]]:
    bad = [("5", TypeError), (None, TypeError), (torch.tensor(5), TypeError), (True, TypeError),
           (5.0, TypeError), (2.5, TypeError), (NAN, TypeError), (INF, TypeError),
           (minimum - 1, ValueError)]
    return bad + ([(-1, ValueError)] if minimum > 0 else [])


KINDS: dict[str, list[tuple[Any, type[Exception]]]] = {
    "real": REAL,
    "nonneg": [*REAL, (-0.1, ValueError)],
    "positive": [*REAL, (0.0, ValueError), (-0.1, ValueError)],
    "positive or None": [v for v in REAL if v[0] is not None] + [(0.0, ValueError)],
    "nonpositive": [*REAL, (0.1, ValueError)],
    "unit": [*REAL, (-0.1, ValueError), (1.0, ValueError)],  # [0, 1)
    "decay": [*REAL, (0.0, ValueError), (1.5, ValueError)],  # (0, 1]
    "fraction": [*REAL, (-0.1, ValueError), (1.0, ValueError)],
    "int >= 0": _ints(0),
    "int >= 1": _ints(1),
    "int >= 2": _ints(2),
    "choice": [("bogus", ValueError), (None, TypeError), (1, TypeError)],
    "flag": [("yes", TypeError), (None, TypeError), (1, TypeError)],
    "object": [(None, TypeError), ("sgd", TypeError), (0.1, TypeError)],
    "callable": [(None, TypeError), (0.1, TypeError)],
    "pair": [(None, TypeError), ((1.0,), ValueError), ((NAN, 0.0), ValueError),
             (("a", 0.0), TypeError)],
    "three numbers": [(None, TypeError), ((1.0, 2.0), ValueError), ((1.0, NAN, 2.0), ValueError),
                      ((1.0, "b", 2.0), TypeError)],
    "increasing ints >= 1": [(None, TypeError), ([0, 5], ValueError), ([2.5], TypeError),
                             ([4, 2], ValueError), (["2"], TypeError)],
    "distinct ints >= 0": [(None, TypeError), (3, TypeError), ([2.5], TypeError),
                           ([-1], ValueError), ([1, 1], ValueError), (["2"], TypeError)],
}
# the message of a refused sequence names the element at fault
SEQUENCE_KINDS = {"pair", "three numbers", "increasing ints >= 1", "distinct ints >= 0"}


def _batches() -> data.MinibatchIter:
    gen = torch.Generator().manual_seed(0)
    return data.MinibatchIter(torch.randn(8, 5, generator=gen), torch.randn(8, generator=gen),
                              batch_size=4)


def _classifier_args() -> dict[str, Any]:
    net = nn.Linear(5, 3)
    batches = data.MinibatchIter(torch.randn(8, 5), torch.randint(0, 3, (8,)), batch_size=4)
    return {"net": net, "train_iter": batches, "test_iter": batches, "num_epochs": 1,
            "optimizer": torch.optim.SGD(net.parameters(), lr=0.1), "animate": False,
            "verbose": False}


def _accumulate_args() -> dict[str, Any]:
    net = nn.Linear(5, 1)
    return {"model": net, "loss_fn": lambda out, y: (out.squeeze(1) - y) ** 2,
            "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}


@dataclass
class Row:
    """How to call a function with good arguments, and the kind of each parameter."""

    valid: Any  # a function returning keyword arguments that are all good
    kinds: dict[str, str]
    free: dict[str, str] = field(default_factory=dict)  # parameter -> why it is not checked here


MOMENTS = {"lr": "nonneg", "beta1": "unit", "beta2": "unit", "eps": "positive"}
NOT_A_HYPERPARAMETER = "an input the function computes with, not a setting"
DISPLAY = "a display option"

ROWS: dict[str, Row | str] = {
    # d2lkit.optim: the optimizers of the book
    "optim.sgd": Row(lambda: {"lr": 0.1}, {"lr": "nonneg"}),
    "optim.momentum": Row(lambda: {"lr": 0.1, "momentum": 0.9},
                          {"lr": "nonneg", "momentum": "unit"}),
    "optim.nesterov": Row(lambda: {"lr": 0.1, "momentum": 0.9},
                          {"lr": "nonneg", "momentum": "unit"}),
    "optim.adagrad": Row(lambda: {"lr": 0.1}, {"lr": "nonneg", "eps": "positive"}),
    "optim.rmsprop": Row(lambda: {"lr": 0.1},
                         {"lr": "nonneg", "gamma": "unit", "eps": "positive"}),
    "optim.adadelta": Row(dict, {"rho": "unit", "eps": "positive", "lr": "nonneg"}),
    "optim.adam": Row(dict, {**MOMENTS, "weight_decay": "nonneg"}),
    "optim.adamw": Row(dict, {**MOMENTS, "weight_decay": "nonneg"}),
    "optim.yogi": Row(dict, MOMENTS),
    # d2lkit.optim: the optimizers of today
    "optim.adafactor": Row(dict, {"lr": "nonneg", "beta2_decay": "nonpositive",
                                  "eps1": "positive or None", "eps2": "nonneg", "d": "positive",
                                  "weight_decay": "nonneg"}),
    "optim.lamb": Row(dict, {**MOMENTS, "weight_decay": "nonneg", "clamp": "positive",
                             "bias_correction": "flag"}),
    "optim.lars": Row(lambda: {"lr": 0.1}, {"lr": "nonneg", "momentum": "unit",
                                            "weight_decay": "nonneg",
                                            "trust_coefficient": "positive", "nesterov": "flag"}),
    "optim.lion": Row(dict, {"lr": "nonneg", "beta1": "unit", "beta2": "unit",
                             "weight_decay": "nonneg"}),
    "optim.muon": Row(dict, {"lr": "nonneg", "momentum": "unit", "nesterov": "flag",
                             "weight_decay": "nonneg", "ns_steps": "int >= 0",
                             "ns_coefficients": "three numbers", "eps": "positive",
                             "adjust_lr": "choice", "adam_lr": "nonneg", "beta1": "unit",
                             "beta2": "unit", "adam_eps": "positive",
                             "adam_weight_decay": "nonneg",
                             "adamw_matrices": "distinct ints >= 0"}),
    "optim.radam": Row(dict, {**MOMENTS, "weight_decay": "nonneg", "decoupled": "flag"}),
    "optim.nadam": Row(dict, {**MOMENTS, "weight_decay": "nonneg", "momentum_decay": "nonneg",
                              "decoupled": "flag"}),
    "optim.schedule_free_sgd": Row(dict, {"lr": "nonneg", "momentum": "unit",
                                          "weight_decay": "nonneg", "warmup_steps": "int >= 0",
                                          "r": "nonneg", "weight_lr_power": "nonneg"}),
    "optim.schedule_free_adamw": Row(dict, {**MOMENTS, "weight_decay": "nonneg",
                                            "warmup_steps": "int >= 0", "r": "nonneg",
                                            "weight_lr_power": "nonneg"}),
    "optim.newton_schulz": "a numerical routine of muon, which validates what it passes",
    "optim.eval_params": "reads a state, has no hyperparameters",
    "optim.state_bytes": "measures a state, has no hyperparameters",
    # d2lkit.optim: wrappers and traces
    "optim.scheduled": Row(lambda: {"opt": optim.sgd(0.1), "schedule": sched.constant(0.1)},
                           {"opt": "object", "schedule": "callable"}),
    "optim.trace_2d": Row(lambda: {"opt": optim.sgd(0.1), "grad_fn": lambda x1, x2: (x1, x2)},
                          {"opt": "object", "grad_fn": "callable", "x0": "pair",
                           "steps": "int >= 0"}),
    "optim.trace_1d": Row(lambda: {"opt": optim.sgd(0.1), "grad": lambda x: x},
                          {"opt": "object", "grad": "callable", "x0": "real",
                           "steps": "int >= 0"}),
    # d2lkit.sched
    "sched.constant": Row(lambda: {"lr": 0.1}, {"lr": "nonneg"}),
    "sched.factor": Row(lambda: {"base_lr": 0.1, "factor": 0.5},
                        {"base_lr": "nonneg", "factor": "decay", "step_size": "int >= 1",
                         "floor": "nonneg"}),
    "sched.exponential": Row(lambda: {"base_lr": 0.1, "gamma": 0.9},
                             {"base_lr": "nonneg", "gamma": "decay"}),
    "sched.multistep": Row(lambda: {"base_lr": 0.1, "milestones": [2, 4]},
                           {"base_lr": "nonneg", "milestones": "increasing ints >= 1",
                            "gamma": "decay"}),
    "sched.polynomial": Row(lambda: {"base_lr": 0.1, "total_steps": 10},
                            {"base_lr": "nonneg", "total_steps": "int >= 1",
                             "power": "positive"}),
    "sched.cosine": Row(lambda: {"base_lr": 0.3, "total_steps": 20},
                        {"base_lr": "nonneg", "total_steps": "int >= 1", "final_lr": "nonneg",
                         "warmup_steps": "int >= 0", "warmup_begin_lr": "nonneg"}),
    "sched.one_cycle": Row(lambda: {"max_lr": 0.1, "total_steps": 100},
                           {"max_lr": "positive", "total_steps": "int >= 2",
                            "pct_start": "fraction", "div_factor": "positive",
                            "final_div_factor": "positive", "anneal": "choice"}),
    "sched.wsd": Row(lambda: {"base_lr": 0.1, "total_steps": 100, "decay_steps": 20},
                     {"base_lr": "nonneg", "total_steps": "int >= 1", "decay_steps": "int >= 1",
                      "warmup_steps": "int >= 0", "final_lr": "nonneg",
                      "warmup_begin_lr": "nonneg"}),
    "sched.linear_to_zero": Row(lambda: {"base_lr": 0.1, "total_steps": 10},
                                {"base_lr": "nonneg", "total_steps": "int >= 1",
                                 "warmup_steps": "int >= 0"}),
    # d2lkit.accumulate
    "accumulate.accumulation_step": Row(
        lambda: {**_accumulate_args(), "micro_batches": list(_batches())},
        {"reduction": "choice"},
        {"model": NOT_A_HYPERPARAMETER, "loss_fn": NOT_A_HYPERPARAMETER,
         "micro_batches": NOT_A_HYPERPARAMETER, "optimizer": "used as given, like torch's"}),
    "accumulate.grouped": Row(lambda: {"items": [1, 2, 3], "size": 2}, {"size": "int >= 1"},
                              {"items": NOT_A_HYPERPARAMETER}),
    "accumulate.train_accumulated": Row(
        lambda: {**_accumulate_args(), "batches": list(_batches()), "accum_steps": 2},
        {"accum_steps": "int >= 1", "reduction": "choice"},
        {"model": NOT_A_HYPERPARAMETER, "loss_fn": NOT_A_HYPERPARAMETER,
         "batches": NOT_A_HYPERPARAMETER, "optimizer": "used as given, like torch's"}),
    # d2lkit.train
    "train.train_airfoil_scratch": Row(
        lambda: {"opt": optim.sgd(0.1), "data_iter": _batches(), "feature_dim": 5,
                 "animate": False},
        {"opt": "object", "feature_dim": "int >= 1", "num_epochs": "int >= 1",
         "eval_every": "int >= 1"},
        {"data_iter": NOT_A_HYPERPARAMETER, "animate": DISPLAY}),
    "train.train_airfoil_concise": Row(
        lambda: {"opt_cls": torch.optim.SGD, "hp": {"lr": 0.1}, "data_iter": _batches(),
                 "animate": False},
        {"opt_cls": "object", "hp": "object", "num_epochs": "int >= 1",
         "eval_every": "int >= 1"},
        {"data_iter": NOT_A_HYPERPARAMETER, "animate": DISPLAY}),
    "train.train_classifier": Row(
        _classifier_args,
        {"num_epochs": "int >= 1", "optimizer": "object", "schedule_unit": "choice"},
        {"net": NOT_A_HYPERPARAMETER, "train_iter": NOT_A_HYPERPARAMETER,
         "test_iter": NOT_A_HYPERPARAMETER, "schedule": "a function or a torch scheduler",
         "loss_fn": NOT_A_HYPERPARAMETER, "on_batch": "a callback", "animate": DISPLAY,
         "verbose": DISPLAY}),
    "train.channels_last_view": "a layout helper, has no hyperparameters",
    "train.evaluate": "an evaluation, has no hyperparameters",
    "train.evaluate_accuracy": "an evaluation, has no hyperparameters",
    "train.evaluate_loss": "an evaluation, has no hyperparameters",
}


def _public_functions(module: ModuleType) -> dict[str, Any]:
    short = module.__name__.removeprefix("d2lkit.")
    return {
        f"{short}.{name}": fn for name, fn in vars(module).items()
        if inspect.isfunction(fn) and not name.startswith("_")
        and fn.__module__.startswith(module.__name__)
    }


FUNCTIONS = {key: fn for module in MODULES for key, fn in _public_functions(module).items()}


def test_every_public_function_has_a_row():
    missing = sorted(set(FUNCTIONS) - set(ROWS))
    assert not missing, (
        f"no row in ROWS of tests/test_hyperparameters.py for {missing}: add one saying what "
        "each parameter is (its kind), or, for a function without hyperparameters, why not")
    assert not sorted(set(ROWS) - set(FUNCTIONS)), "rows for functions that no longer exist"
    for key, row in ROWS.items():
        if isinstance(row, str):
            continue
        params = set(inspect.signature(FUNCTIONS[key]).parameters)
        described = set(row.kinds) | set(row.free)
        assert params == described, (
            f"{key}: parameters without a kind in ROWS of tests/test_hyperparameters.py: "
            f"{sorted(params - described)}; described but gone: {sorted(described - params)}")
        assert all(kind in KINDS for kind in row.kinds.values()), key


def test_every_row_is_callable_with_its_good_arguments():
    for key, row in ROWS.items():
        if not isinstance(row, str):
            result = FUNCTIONS[key](**row.valid())
            if inspect.isgenerator(result):
                list(result)


CASES = [
    pytest.param(key, param, bad, error, id=f"{key}-{param}-{bad!r}")
    for key, row in ROWS.items() if not isinstance(row, str)
    for param, kind in row.kinds.items()
    for bad, error in KINDS[kind]
]


@pytest.mark.parametrize(("key", "param", "bad", "error"), CASES)
def test_bad_value_is_refused_naming_the_parameter(key, param, bad, error):
    row = ROWS[key]
    kwargs = {**row.valid(), param: bad}
    with pytest.raises((TypeError, ValueError)) as info:
        FUNCTIONS[key](**kwargs)
    message = str(info.value)
    assert info.type is error, f"{key}({param}={bad!r}) raised {info.type.__name__}: {message}"
    assert re.match(rf"Invalid {re.escape(param)}\b", message), message
    if row.kinds[param] not in SEQUENCE_KINDS:
        assert f": {bad!r} " in message, message


# ----- d2lkit.checks itself ----------------------------------------------------------------------


def test_checks_return_plain_python_numbers():
    import numpy as np

    assert type(checks.real("x", np.float32(0.5))) is float
    assert checks.integer("n", np.int64(3), minimum=1) == 3
    assert type(checks.integer("n", np.int64(3))) is int
    assert checks.unit("beta", 0.0) == 0.0 and checks.positive("eps", 1e-300) == 1e-300
    assert checks.in_range("floor", 0.1, 0.0, 0.1) == 0.1
    assert checks.choice("anneal", "cos", ("cos", "linear")) == "cos"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: checks.nonneg("lr", -1), "Invalid lr: -1 (expected lr >= 0)"),
    (lambda: checks.positive("eps", 0.0), "Invalid eps: 0.0 (expected eps > 0)"),
    (lambda: checks.unit("beta1", 1.0), "Invalid beta1: 1.0 (expected 0 <= beta1 < 1)"),
    (lambda: checks.in_range("g", 2.0, 0.0, 1.0, low_open=True),
     "Invalid g: 2.0 (expected 0 < g <= 1)"),
    (lambda: checks.in_range("d", 0.5, high=0.0), "Invalid d: 0.5 (expected d <= 0)"),
    (lambda: checks.real("lr", "0.1"), "Invalid lr: '0.1' (expected a real number, got a str)"),
    (lambda: checks.real("lr", INF), "Invalid lr: inf (expected a finite number)"),
    (lambda: checks.integer("step_size", 5.0),
     "Invalid step_size: 5.0 (expected an int, got a float)"),
    (lambda: checks.integer("n", 0, minimum=1), "Invalid n: 0 (expected an integer n >= 1)"),
    (lambda: checks.choice("anneal", "step", ("cos", "linear")),
     "Invalid anneal: 'step' (expected one of ('cos', 'linear'))"),
])
def test_check_messages(call, message):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert str(info.value) == message
