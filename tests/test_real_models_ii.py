"""Notebooks 05-10: non-uniform grids and the lookup-table path, QAT (STE, LSQ, conversion to
integers), mixed precision, energy counts, SmoothQuant, cached results and their checksums."""

import json
import shutil

import numpy as np
import pytest
import torch

from qkit import data, reference
from qkit.engine import IntegerModel, Scheme
from qkit.formats import nonuniform
from qkit.models import mnist_cnn
from qkit.studies import results
from qkit.topics import energy, mixed, qat, smoothquant

QLORA_NF4 = np.array([-1.0, -0.6961928, -0.52507305, -0.39491749, -0.28444138, -0.18477343,
                      -0.09105004, 0.0, 0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983,
                      0.562617, 0.72295684, 1.0], np.float32)


@pytest.fixture(scope="module")
def mnist():
    split = data.mnist5k()
    return {"model": mnist_cnn.load(),
            "x": mnist_cnn.to_input(split["x_train"]), "y": torch.from_numpy(split["y_train"]),
            "x_test": mnist_cnn.to_input(split["x_test"]), "y_test": split["y_test"]}


# --- non-uniform grids ----------------------------------------------------------------------


def test_nf4_is_qloras_table():
    assert np.abs(nonuniform.nf_levels(4) - QLORA_NF4).max() < 2e-7
    for bits in (2, 3, 5):
        v = nonuniform.nf_levels(bits)
        assert v.size == 2**bits and 0.0 in v and v.min() == -1 and v.max() == 1


def test_uniform_and_log_levels():
    assert np.array_equal(nonuniform.uniform_levels(3) * 3, np.arange(-3, 4))
    assert np.array_equal(nonuniform.log_levels(3), [-1, -0.5, -0.25, 0, 0.25, 0.5, 1])


def test_nearest_sends_ties_down():
    levels = np.array([-1.0, 0.0, 1.0], np.float32)
    assert list(nonuniform.nearest(np.array([-0.5, 0.5, 0.49, 0.51]), levels)) == [0, 1, 1, 2]


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_fitted_grids_beat_uniform_on_gaussian_weights(bits):
    w = np.random.default_rng(bits).normal(size=(64, 256)).astype(np.float32)
    db = {g: nonuniform.report(w, g, bits)["sqnr_db"] for g in nonuniform.GRIDS}
    assert db["kmeans"] > db["uniform"] + 1
    assert db["nf"] > db["uniform"] or bits == 2  # NF2 has only 4 asymmetric levels


def test_codebook_bytes_and_block_scales():
    w = np.random.default_rng(0).normal(size=(10, 130)).astype(np.float32)
    cw = nonuniform.quantize(w, "nf", 4, block=64)
    assert cw.scales.shape == (10, 3)  # 130 = 64 + 64 + 2
    assert cw.nbytes() == 10 * 130 // 2 + 4 * 16 + 4 * 30
    w_hat = cw.dequantize()
    assert w_hat.shape == w.shape
    # every block's absmax is exactly representable (level +-1 times its scale)
    assert np.allclose(np.abs(w_hat[:, :64]).max(axis=1), np.abs(w[:, :64]).max(axis=1))


@pytest.mark.parametrize("grid", nonuniform.GRIDS)
@pytest.mark.parametrize("block", [None, 64])
def test_lut_matmul_matches_the_dequantized_product(grid, block):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(48, 200)).astype(np.float32)
    cw = nonuniform.quantize(w, grid, 3, block)
    x_q = rng.integers(0, 256, (7, 200)).astype(np.uint8)
    fast = nonuniform.lut_matmul(x_q, 0.05, 100, cw)
    # the same computation on the readable NumPy kernel gives the same floats (integer sums equal)
    assert np.array_equal(fast, nonuniform.lut_matmul(x_q, 0.05, 100, cw, backend=reference))
    c, unit = nonuniform.integer_codebook(cw.levels, min(cw.block, 200))
    per_weight = np.repeat(cw.scales, cw.block, axis=1)[:, :200]
    w_int = c[cw.idx].astype(np.float64) * unit * per_weight
    ref = ((x_q.astype(np.float64) - 100) * 0.05) @ w_int.T
    assert np.allclose(fast, ref, rtol=1e-5, atol=1e-4)
    exact = ((x_q.astype(np.float64) - 100) * 0.05) @ cw.dequantize().T.astype(np.float64)
    assert np.abs(fast - exact).max() < 1e-3 * np.abs(exact).max()


def test_integer_codebook_respects_int32():
    c, unit = nonuniform.integer_codebook(nonuniform.nf_levels(4), k=1280)
    assert 255 * 1280 * int(np.abs(c).max()) <= 2**31 - 1
    assert np.abs(c * unit - nonuniform.nf_levels(4)).max() <= unit / 2 + 1e-9


@pytest.mark.parametrize("bad,err", [
    (dict(w=np.array([[np.nan, 1.0]])), ValueError),
    (dict(w=np.ones((0, 4))), ValueError),
    (dict(w=np.ones(4)), ValueError),
    (dict(grid="float"), ValueError),
    (dict(bits=1), ValueError),
    (dict(bits=9), ValueError),
    (dict(bits=3.0), TypeError),
    (dict(block=0), ValueError),
])
def test_quantize_refuses_bad_input(bad, err):
    args = dict(w=np.ones((4, 8), np.float32), grid="nf", bits=4, block=None)
    args.update(bad)
    with pytest.raises(err):
        nonuniform.quantize(**args)


def test_constant_and_zero_rows_do_not_break():
    w = np.zeros((3, 8), np.float32)
    w[1] = 2.5
    for grid in nonuniform.GRIDS:
        w_hat = nonuniform.quantize(w, grid, 3).dequantize()
        assert np.isfinite(w_hat).all() and np.allclose(w_hat[0], 0)


# --- QAT ------------------------------------------------------------------------------------


def test_ste_gradients():
    x = torch.linspace(-2, 2, 81, requires_grad=True)
    qat.fake_quantize_ste(x, 0.5, -3, 3).sum().backward()
    r = torch.round(x.detach() / 0.5)  # the clamp acts after rounding, as in torch FakeQuantize
    assert torch.equal(x.grad, ((r >= -3) & (r <= 3)).float())
    torch_x = x.detach().clone().requires_grad_(True)
    torch.fake_quantize_per_tensor_affine(torch_x, 0.5, 0, -3, 3).sum().backward()
    assert torch.equal(x.grad, torch_x.grad)
    y = torch.tensor([0.3, 1.7], requires_grad=True)
    qat.round_ste(y).sum().backward()
    assert torch.equal(y.grad, torch.ones(2))


def test_lsq_init_and_step_gradient():
    torch.manual_seed(0)
    w = torch.randn(4, 50)
    q = qat.LSQ(4, signed=True, channels=4)
    q(w)
    assert torch.allclose(q.step.detach(), 2 * w.abs().mean(dim=1) / np.sqrt(7))
    q.step.grad = None
    q(w).sum().backward()
    s = q.step.detach()[:, None]
    v = w / s
    inside = (v >= -7) & (v <= 7)
    # LSQ: d x_hat / d s = round(v) - v inside, qmin/qmax outside; times g = 1/sqrt(N Qp)
    per = torch.where(inside, torch.round(v) - v, torch.clamp(v, -7, 7).round())
    assert torch.allclose(q.step.grad, per.sum(dim=1) / np.sqrt(50 * 7), atol=1e-5)


def test_qat_converts_to_the_integer_engine(mnist):
    x, y = mnist["x"][:512], mnist["y"][:512]
    net, curves = qat.train(mnist["model"], x, y, weight_bits=3, epochs=1, progress=False)
    assert len(curves["loss"]) == 8 and np.isfinite(curves["loss"]).all()
    im = net.to_integer(x[:256].numpy())
    # the learned grids are the engine's grids
    steps = net.learned_steps()
    for name, s in steps["weights"].items():
        assert np.allclose(im.layers[name]["w_scale"], s)
    for name, s in steps["activations"].items():
        assert im.act[name] == (np.float32(s), 0)
    xt = mnist["x_test"][:500]
    with torch.no_grad():
        fake = net(xt).argmax(1).numpy()
    assert (im(xt.numpy()).argmax(1) == fake).mean() >= 0.97


def test_stored_qat_study_matches_the_live_ptq(mnist):
    """The PTQ column of the cached QAT study is re-measured here, so it cannot be stale."""
    stored = results.load("qat")
    calib = mnist["x"][:256].numpy()
    for row in stored["rows"]:
        im = IntegerModel.from_float(mnist["model"], calib, Scheme(row["bits"]))
        live = float((im(mnist["x_test"].numpy()).argmax(1) == mnist["y_test"]).mean())
        assert live == row["ptq_integer"], row["bits"]
        assert row["qat_integer"] >= row["ptq_integer"] - 0.005
    low = {r["bits"]: r for r in stored["rows"]}
    assert low[2]["qat_integer"] > low[2]["ptq_integer"] + 0.5  # QAT recovers 2-bit weights


# --- mixed precision ------------------------------------------------------------------------


def _toy_sensitivity():
    return {"layers": ["a", "b", "c"], "choices": [2, 4, 8], "weights": [1000, 100, 5000],
            "channels": [10, 10, 10], "signal_power": 1.0,
            "sqnr_db": {"a": [5.0, 20.0, 45.0], "b": [2.0, 15.0, 40.0], "c": [20.0, 30.0, 50.0]}}


def test_allocation_meets_the_budget_and_spends_bits_where_they_matter():
    sens = _toy_sensitivity()
    full = mixed.model_bytes(sens, mixed.uniform_bits(sens, 8))
    previous = None
    for frac in (1.0, 0.7, 0.5, 0.35, 0.3):
        bits = mixed.allocate(sens, frac * full)
        assert mixed.model_bytes(sens, bits) <= frac * full
        pred = mixed.predicted_sqnr(sens, bits)
        assert previous is None or pred <= previous + 1e-9  # less budget, never better
        previous = pred
    assert mixed.allocate(sens, 0.5 * full)["c"] < 8  # the big, robust layer goes first
    smallest = mixed.allocate(sens, 0)  # unreachable: everything at the lowest choice
    assert set(smallest.values()) == {2}


def test_predicted_sqnr_adds_noise_powers():
    sens = _toy_sensitivity()
    bits = {"a": 4, "b": 4, "c": 8}
    want = 10 * np.log10(1 / (10**-2 + 10**-1.5 + 10**-5))
    assert abs(mixed.predicted_sqnr(sens, bits) - want) < 1e-9


def test_pareto_front():
    pts = [{"bytes": 10, "accuracy": 0.5}, {"bytes": 20, "accuracy": 0.4},
           {"bytes": 30, "accuracy": 0.9}, {"bytes": 30, "accuracy": 0.8},
           {"bytes": 40, "accuracy": 0.9}]
    assert mixed.pareto_front(pts) == [pts[0], pts[2]]


def test_mnist_sensitivity_is_ordered(mnist):
    sens = mixed.sensitivity(mnist["model"], mnist["x_test"][:200].numpy(),
                             mnist["y_test"][:200], choices=(2, 4, 8))
    for name in sens["layers"]:
        db = sens["sqnr_db"][name]
        assert db[0] < db[1] < db[2], name
    # the classifier alone at 2 bits costs the most accuracy (measured in notebook 08)
    assert min(sens["layers"], key=lambda n: sens["accuracy"][n][0]) == "classifier_1"


# --- energy ---------------------------------------------------------------------------------


def test_energy_counts_of_real_models():
    from qkit.models import mobilenet_v2 as mv2

    c = energy.traced_counts(mv2.load(), torch.zeros(1, 3, 224, 224))
    assert 295e6 < c["macs"] < 305e6  # MobileNetV2 1.0-224: 300 M multiply-adds (Sandler 2018)
    assert 3.4e6 < c["weights"] < 3.5e6
    t = energy.transformer_counts(tokens=1)
    assert t["weights"] == 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    e = energy.compare_precisions(c)
    assert e["int4"]["weights_uj"] == pytest.approx(e["int8"]["weights_uj"] / 2)
    assert e["fp32"]["total_uj"] > e["int8"]["total_uj"] > e["int4"]["total_uj"]
    on_chip = energy.compare_precisions(c, weights_on_chip=True)
    assert on_chip["int8"]["weights_uj"] < e["int8"]["weights_uj"] / 100
    with pytest.raises(ValueError, match="precision"):
        energy.estimate(1, 1, 1, "int2")


# --- SmoothQuant ----------------------------------------------------------------------------


def test_smoothing_is_exact_before_quantization():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16) * torch.linspace(0.1, 30, 16)
    s = smoothquant.smoothing_factors(x.abs().amax(0).numpy(), lin.weight.detach().numpy(), 0.5)
    with torch.no_grad():
        smoothed = torch.nn.functional.linear(x / torch.from_numpy(s),
                                              lin.weight * torch.from_numpy(s), lin.bias)
        assert torch.allclose(smoothed, lin(x), atol=1e-4)
        # at 16 bits the fake quantization is nearly transparent
        assert torch.allclose(smoothquant.SmoothedLinear(lin, s, 16, 16)(x), lin(x), atol=2e-3)
    assert np.allclose(smoothquant.smoothing_factors(np.array([64.0]), np.array([[0.25]]), 0.5),
                       16)
    with pytest.raises(ValueError, match="alpha"):
        smoothquant.smoothing_factors(np.ones(2), np.ones((2, 2)), 1.5)


def test_smoothing_helps_minilm_at_low_activation_bits():
    from qkit.models import minilm

    model, bbc = minilm.load(), data.bbc_news()
    stats = smoothquant.capture(model, bbc["x_train"][:16], max_len=32)
    assert set(stats) == {f"{i}.{n}" for i in range(6) for n in smoothquant.SMOOTHABLE}
    texts = bbc["x_test"][:8]
    ref = minilm.embed(model, texts, 32)

    def cos(m):
        return float((minilm.embed(m, texts, 32) * ref).sum(1).mean())

    plain = cos(smoothquant.quantized_model(model, None, a_bits=6))
    smooth = cos(smoothquant.quantized_model(model, stats, 0.5, a_bits=6))
    assert smooth > plain


# --- cached results -------------------------------------------------------------------------


def test_every_result_is_present_and_verified():
    for name in results.PRODUCERS:
        assert isinstance(results.load(name), dict), name


def test_corrupted_or_unknown_result_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(results, "SUMS", tmp_path / "SHA256SUMS")
    shutil.copy(results.DATA_DIR / "results" / "qat.json", tmp_path / "qat.json")
    with pytest.raises(data.DataError, match="no checksum.*precompute qat"):
        results.load("qat")
    results.record("qat.json")
    assert results.load("qat")["rows"]
    text = json.loads((tmp_path / "qat.json").read_text())
    text["fp32"] = 1.0
    (tmp_path / "qat.json").write_text(json.dumps(text))
    with pytest.raises(data.DataError, match="corrupted.*python -m qkit precompute qat"):
        results.load("qat")
    (tmp_path / "qat.json").unlink()
    with pytest.raises(data.DataError, match="missing"):
        results.load("qat")
    with pytest.raises(KeyError, match="unknown result"):
        results.load("nothing")


def test_stored_mnist_rows_match_the_live_engine(mnist):
    from qkit.engine import SCHEMES

    rows = [r for r in results.load("models")["rows"] if r["model"] == "mnist-cnn"
            and r["engine"] == "qkit int"]
    calib = mnist["x"][:256].numpy()
    for r in rows:
        im = IntegerModel.from_float(mnist["model"], calib, SCHEMES[r["scheme"]])
        assert float((im(mnist["x_test"].numpy()).argmax(1) == mnist["y_test"]).mean()) == \
            r["value"], r["scheme"]
        assert im.size_bytes() == r["size_bytes"]


# --- explorers of notebooks 05-10, driven headless ------------------------------------------


def _drive(explorer):
    from test_notebook_tools import _drive as drive  # tests/ is on sys.path (no package)

    drive(explorer)


def test_ptq_explorer(mnist):
    from qkit.lab import widgets

    ex = widgets.ptq_explorer(mnist["model"], mnist["x"][:256].numpy(),
                              mnist["x_test"][:300].numpy(), mnist["y_test"][:300], 64)
    _drive(ex)
    ex.controls["bits"].value = 8
    db8 = ex.result["last_db"]
    ex.controls["bits"].value = 2
    assert ex.result["last_db"] < db8 - 20 and ex.result["accuracy"] < 0.5


def test_grid_explorer():
    from qkit.lab import widgets

    ex = widgets.grid_explorer({"classifier": data.real_weight()[:200],
                                "conv": np.random.default_rng(0).normal(size=(8, 4, 3, 3))})
    _drive(ex)
    ex.controls["layer"].value, ex.controls["bits"].value = "classifier", 3
    assert ex.result["kmeans"] > ex.result["uniform"]


def test_qat_and_budget_explorers(mnist):
    from qkit.lab import widgets

    ex = widgets.qat_explorer(results.load("qat"))
    _drive(ex)
    ex.controls["bits"].value = 2
    assert ex.result["qat"] > ex.result["ptq"] + 0.5
    study = {"sensitivity": mixed.sensitivity(mnist["model"], mnist["x_test"][:200].numpy()),
             "points": [{"bytes": 30_000, "accuracy": 0.95}, {"bytes": 90_000, "accuracy": 0.99}],
             "fp32_bytes": 365_632}
    ex = widgets.budget_explorer(study, mnist["model"], mnist["x"][:256].numpy(),
                                 mnist["x_test"][:300].numpy(), mnist["y_test"][:300])
    _drive(ex)
    ex.controls["budget"].value = 30.0
    assert set(ex.result["bits"].values()) == {8}
    ex.controls["budget"].value = 6.5
    assert ex.result["bytes"] < 0.07 * 365_632


def test_energy_explorer():
    from qkit.lab import widgets

    ex = widgets.energy_explorer({"cnn": energy.transformer_counts(8)})
    _drive(ex)
    ex.controls["on_chip"].value = False
    assert ex.result["ratio"] > 1 and ex.result["int4"] < ex.result["int8"]


def test_smoothquant_explorer():
    from qkit.lab import widgets
    from qkit.models import minilm

    model, bbc = minilm.load(), data.bbc_news()
    stats = smoothquant.capture(model, bbc["x_train"][:8], max_len=32)
    ex = widgets.smoothquant_explorer(model, stats, bbc["x_test"][:4], max_len=32)
    ex.controls["alpha"].value = 1.0
    assert abs(ex.result["after"] - 1) < 1e-3  # alpha 1: every channel of x / s peaks at 1
    ex.controls["alpha"].value = 0.5
    assert 1 < ex.result["after"] < ex.result["before"]
    ex.controls["a_bits"].value = 8
    assert 0.9 < ex.result["plain"] <= 1.0


@pytest.mark.parametrize("check,answer,hint", [
    ("fold_bn", lambda w, b, g, be, m, v, e: (w * (g / np.sqrt(v + e))[:, None, None, None],
                                               b * g / np.sqrt(v + e) + be), "subtract the mean"),
    ("percentile_clip", lambda x, p: np.percentile(x, p), "of |x|"),
    ("cle_factor", 0.25, "1/s"),
    ("kmeans_step", lambda x, c: np.array([x[np.abs(x[:, None] - c).argmin(1) == i].mean()
                                           for i in range(len(c))]), "keep it"),
    ("lut_multiplies", 64, "sums the activations"),
    ("nf4_bits_per_weight", 4, "add the scales"),
    ("ste_gradient", lambda x, s, lo, hi: np.ones_like(x), "plain STE"),
    ("ste_gradient", lambda x, s, lo, hi: ((x / s >= lo) & (x / s <= hi)).astype(float),
     "after the rounding"),
    ("lsq_grad_scale", 1 / np.sqrt(288), "include Qp"),
    ("additive_sqnr", 15.0, "not decibels"),
    ("allocation_bytes", 500_000, "scales"),
    ("greedy_choice", "B", "noise per byte"),
    ("group_bytes", 1536 * 384 // 2, "scale per 64"),
])
def test_notebook_05_10_exercise_mistakes(check, answer, hint):
    import warnings

    from qkit.lab import exercises

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty-cluster mistake takes a mean of nothing
        fb = getattr(exercises, check)(answer)
    assert not fb and hint in fb.message


# --- dynamic and weight-only CNNs (qkit.engine.dynamic) -------------------------------------


def test_dynamic_and_weight_only_cnn(mnist):
    from qkit.core.metrics import sqnr_db
    from qkit.engine.dynamic import DynamicModel, WeightOnlyModel, quantize_dynamic
    from qkit.engine.floatrun import run_float

    x = mnist["x_test"][:200].numpy()
    model = mnist["model"]
    ops, _ = __import__("qkit.engine", fromlist=["trace"]).trace(model)
    ref = run_float(ops, x).numpy()
    dyn = DynamicModel(model)
    assert sqnr_db(ref, dyn(x)) > 25
    assert (dyn(x).argmax(1) == ref.argmax(1)).mean() > 0.99
    w8, w4 = WeightOnlyModel(model, 8), WeightOnlyModel(model, 4)
    assert sqnr_db(ref, w8(x)) > sqnr_db(ref, w4(x)) + 15
    n_w = sum(op.params["weight"].size for op in ops if op.kind in ("conv", "linear"))
    assert dyn.size_bytes() == w8.size_bytes() and w8.size_bytes() < 0.26 * 4 * n_w
    assert w4.size_bytes() < 0.14 * 4 * n_w
    # the run-time grid always holds 0 and the tensor's extremes
    q, s, z = quantize_dynamic(np.array([[-1.0, 0.0, 3.0]], np.float32))
    assert q[0, 1] == z and q[0, 0] == 0 and q[0, 2] == 255
