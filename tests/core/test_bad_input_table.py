"""Every row of the bad-input table (tests/core/bad_input_table.py) gets a clear error that names
the argument (ValueError or TypeError, or qkit's AccumulatorOverflowError), or, where the
input is unusual but valid, the right result. Never an AttributeError, IndexError, numba
error or a silent answer."""

import bad_input_table as table  # (tests/core is on sys.path, as for kernel_cases)
import pytest

CASES = table.CASES
pytestmark = pytest.mark.nojit  # the validation layer holds with the JIT off as well


def outcome(call, expected) -> tuple[str, str]:
    """("clear" | "valid" | "silent" | "obscure" | "unclear" | "wrong", detail)."""
    try:
        result = call()
    except Exception as err:  # noqa: BLE001 - classifying every error is the point
        if expected[0] == "valid":
            return "obscure", f"{type(err).__name__}: {err}"
        _, kinds, text = expected
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(err, kinds):
            return "obscure", f"{type(err).__name__}: {err}"
        return ("clear", str(err)) if text in str(err) else ("unclear", str(err))
    if expected[0] == "error":
        return "silent", f"returned {type(result).__name__}"
    return ("valid", "") if expected[1](result) else ("wrong", repr(result)[:200])


def test_the_table_is_big_enough():
    assert len(CASES) >= 200
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, call, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, call, expected):
    kind, detail = outcome(call, expected)
    assert kind in ("clear", "valid"), f"{kind}: {detail}"
