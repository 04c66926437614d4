"""Every sentence of the notebooks that states a number, a direction or a winner is a
registered claim, and every claim holds when measured here (`qkit.lab.claims`)."""

import pytest

from qkit.lab import claims
from qkit.lab.claims import prose

ALL = claims.load()


def _id(c):
    return f"{c.notebook}:{c.text[:48]}"


@pytest.mark.parametrize("notebook", claims.NOTEBOOKS)
def test_every_statement_is_claimed(notebook):
    assert claims.uncovered(notebook) == []


@pytest.mark.parametrize("notebook", claims.NOTEBOOKS)
def test_every_claim_is_still_in_its_notebook(notebook):
    assert claims.missing(notebook) == []


@pytest.mark.parametrize("c", [pytest.param(c, id=_id(c), marks=[pytest.mark.slow] * c.slow)
                               for c in ALL])
def test_claim_holds(c):
    m = claims.verify(c)
    if m is None:
        pytest.skip(f"not applicable here: {c.needs()}")
    assert m.holds, m.detail


def test_statements_are_found():
    """The finder sees items, takeaways and quantities, and skips questions and sources."""
    found = prose.statements("00")
    kinds = {s.kind for s in found}
    assert kinds == {"try", "takeaway", "number"}
    assert not any(s.text.startswith(("Sources", "1.")) for s in found)
    assert prose.normalize("a **bold**\n `code`  x") == "a bold code x"


def test_claims_are_unique():
    texts = [(c.notebook, c.text) for c in ALL]
    assert len(texts) == len(set(texts))
