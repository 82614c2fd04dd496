"""gabic.checks: the argument checks the library shares, their one-line messages, their imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import gabic.checks
import gabic.layers
from gabic.checks import check_choice, check_int, is_int, is_number


def test_is_int_and_is_number_leave_out_bool():
    assert is_int(3) and is_int(np.int64(3)) and is_int(-1)
    assert not any(is_int(v) for v in (True, False, 3.0, "3", None, np.float32(3)))
    assert is_number(3) and is_number(2.5) and is_number(np.float32(2.5)) and is_number(float("nan"))
    assert not any(is_number(v) for v in (True, "2.5", None, 1j))


@pytest.mark.parametrize(
    "args,kwargs,message",
    [
        ((0, "size", 1), {"detail": " (pixels)"}, "size must be a positive integer (pixels), got 0"),
        ((True, "num_pixels", 1), {}, "num_pixels must be a positive integer, got True"),
        ((20, "knn", 1, 15), {"detail": " (windows of 16 nodes)"}, "knn must be an integer in 1..15 (windows of 16 nodes), got 20"),
        ((-1, "seed", 0), {"also": (None,)}, "seed must be None or an integer >= 0, got -1"),
        ((8.0, "centre_crop", 16), {"also": (None,)}, "centre_crop must be None or an integer >= 16, got 8.0"),
        (
            ("max", "head", 0, 7),
            {"also": ("mean",), "detail": " for block g_a.4"},
            "head must be 'mean' or an integer in 0..7 for block g_a.4, got 'max'",
        ),
        ((9, "n", None, 8), {}, "n must be an integer <= 8, got 9"),
        (("1", "n"), {}, "n must be an integer, got '1'"),
    ],
)
def test_check_int_says_what_was_expected_and_given(args, kwargs, message):
    with pytest.raises(ValueError) as err:
        check_int(*args, **kwargs)
    assert str(err.value) == message


def test_check_int_returns_a_python_int_or_the_accepted_value():
    assert check_int(1, "k", 1, 1) == 1
    out = check_int(np.int64(7), "k", 1)
    assert out == 7 and type(out) is int
    assert check_int(None, "seed", 0, also=(None,)) is None
    assert check_int("mean", "head", 0, 3, also=("mean",)) == "mean"
    with pytest.raises(ValueError, match="got 0"):
        check_int(0, "head", 1, 3, also=(False,))  # 0 == False, but 0 is not False


def test_check_choice_is_the_one_of_the_layers():
    assert gabic.layers.check_choice is check_choice
    assert check_choice("pyg", ("dense", "pyg"), "backend") == "pyg"
    with pytest.raises(ValueError) as err:
        check_choice("sparse", ("dense", "pyg"), "backend")
    assert str(err.value) == "backend must be one of 'dense', 'pyg', got 'sparse'"


def test_checks_import_only_the_standard_library():
    tree = ast.parse(Path(gabic.checks.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported and all(name.split(".")[0] in sys.stdlib_module_names | {"__future__"} for name in imported), imported
