"""``python -m qkit eval``: the stored table at once, recomputation on request with a progress
bar naming the model and the step, and clear refusals of bad arguments."""

import json
import time

import pytest

from qkit.studies import eval as ev
from qkit.studies import eval_cli


def test_default_prints_the_stored_table_at_once(capsys):
    t0 = time.perf_counter()
    assert eval_cli.main([]) == 0
    out = capsys.readouterr().out
    assert time.perf_counter() - t0 < 10  # no model is run
    stored = eval_cli.stored()
    assert "stored table, measured on" in out and stored["cpu"] in out
    for model in ("mnist-cnn", "mobilenet-v2", "minilm-l6"):
        assert f"\n{model} " in out
    assert out.count("\n") > len(stored["rows"])  # every row printed
    assert eval_cli.main(["--stored", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x) for x in lines] == stored["rows"]


def test_a_table_from_other_code_says_so(monkeypatch, capsys):
    monkeypatch.setattr(eval_cli, "fingerprint", lambda: "0" * 16)
    eval_cli.main([])
    assert "have changed since this table was measured" in capsys.readouterr().out


def test_fingerprint_follows_the_code(tmp_path, monkeypatch):
    a = ev.fingerprint()
    assert a == ev.fingerprint() and len(a) == 16
    monkeypatch.setattr(ev, "MEASURED_BY", ev.MEASURED_BY[:-1])
    assert ev.fingerprint() != a


@pytest.mark.parametrize("argv, message", [
    (["--stored", "--recompute"], "does not go with"),
    (["--stored", "--models", "minilm"], "does not go with"),
    (["--models", "resnet"], "invalid choice"),
    (["--recompute", "--rounds", "0"], "--rounds must be at least 1"),
])
def test_bad_arguments_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        eval_cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_steps_name_the_model_and_the_step(capsys):
    bar = ev.Steps("mnist-cnn", 2, progress=True)
    bar.step("w8a8-per-channel")
    bar.step("torch ptq")
    bar.close()
    err = capsys.readouterr().err
    assert "mnist-cnn" in err and "torch ptq" in err and "2/2" in err


@pytest.mark.slow
def test_recomputing_one_model_shows_its_progress(capsys):
    assert eval_cli.main(["--models", "mnist-cnn", "--rounds", "1"]) == 0
    cap = capsys.readouterr()
    assert "measured now (mnist-cnn)" in cap.out and "mobilenet-v2" not in cap.out
    for step in ("mnist-cnn", "w8a8-per-channel", "dynamic-w8a8", "torch ptq", "latency"):
        assert step in cap.err, step
    steps = 1 + len(ev.SCHEMES) + len(ev.WEIGHT_ONLY) + 2
    assert f"{steps}/{steps}" in cap.err
