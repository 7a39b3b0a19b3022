"""Tiny real run of ``training.refine``: the DIM refinement stage learns and exports faithfully."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livematte.quality.refine import Refiner  # noqa: E402
from tests.conftest import DATA, read_rgb  # noqa: E402
from training.models.dim import DIMEncoderDecoder, DIMRefinement  # noqa: E402
from training.refine import degrade, dim_loss, load_backgrounds, load_samples, main, make_batch, train  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU is shared (as in real training runs): oversubscribed threads only thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    dataset = DATA / "eg1800-train"
    if not dataset.is_dir() or not (DATA / "backgrounds").is_dir():
        pytest.skip(f"{dataset} or backgrounds not available")
    cache = tmp_path_factory.mktemp("pseudo_alpha")
    return load_samples(dataset, cache, 3), load_backgrounds(DATA / "backgrounds", 4), cache


def test_degraded_alpha_is_a_worse_but_related_matte():
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 20:60] = 1.0
    coarse = degrade(alpha, np.random.default_rng(0))
    assert coarse.shape == alpha.shape and 0.0 <= coarse.min() and coarse.max() <= 1.0
    error = np.abs(coarse - alpha)
    assert 0.0 < error.mean() < 0.25
    assert error[40, 40] < 0.5 and error[5, 5] < 0.5  # still a square, not noise


def test_refinement_starts_as_identity_and_the_reference_model_runs():
    image, coarse = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    assert torch.equal(DIMRefinement()(image, coarse), coarse)
    assert DIMEncoderDecoder(widths=(8, 8, 8, 8, 8))(image, coarse).shape == (1, 1, 32, 32)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(data):
    samples, backgrounds, _ = data
    torch.manual_seed(0)
    model = DIMRefinement(channels=8)
    fixed = make_batch(samples, backgrounds, 32, 64, np.random.default_rng(7))  # big enough to be a fair judge
    with torch.no_grad():
        before = float(dim_loss(model(fixed["image"], fixed["coarse"]), fixed))
    losses = train(model, samples, backgrounds, steps=40, batch=8, crop=64, lr=1e-2, log_every=0)
    with torch.no_grad():
        after = float(dim_loss(model(fixed["image"], fixed["coarse"]), fixed))
    assert len(losses) == 40 and np.isfinite(losses).all()
    assert after < 0.95 * before


def test_command_exports_an_engine_the_runtime_runs_like_torch(data, tmp_path, monkeypatch):
    import copy

    import training.refine

    _, _, cache = data
    exported = {}  # the trained model as the exporter received it (the graph's own weights are rewritten)

    def export_and_keep(model, *args, **kwargs):
        exported["model"] = copy.deepcopy(model)
        return export_engine(model, *args, **kwargs)

    export_engine = training.refine.export_engine
    monkeypatch.setattr(training.refine, "export_engine", export_and_keep)
    out = tmp_path / "lm-refine"
    assert main(["--out", str(out), "--steps", "3", "--images", "3", "--backgrounds", "4", "--batch", "2",
                 "--crop", "48", "--channels", "8", "--cache", str(cache), "--no-eval"]) == 0
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["role"] == "refinement" and "research" in manifest["license"]
    assert out.with_suffix(".onnx").stat().st_size < 500_000
    rgb = read_rgb(sorted((DATA / "aisegment-matting-human-samples" / "image").glob("*.png"))[0])[:97, :131]
    coarse = np.random.default_rng(0).random(rgb.shape[:2]).astype(np.float32)
    runtime = Refiner(out.with_suffix(".json"), tile=40).refine(rgb.copy(), coarse)
    model = exported["model"]
    assert isinstance(model, DIMRefinement)
    with torch.no_grad():
        expected = model(torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32)[None] / 255.0),
                         torch.from_numpy(coarse)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(runtime, expected, atol=1e-4)


def test_refine_writes_the_shipped_manifest(tmp_path):
    """The exporter's manifest for the shipped refinement engine is the shipped file, given its provenance and numbers."""
    from dataclasses import replace
    from pathlib import Path

    from livematte.manifest import load_manifest
    from training.export import GraphModule, build_manifest, licence_text

    path = Path(__file__).resolve().parents[1] / "engines" / "refinement" / "lm-refine.json"
    shipped = load_manifest(path)
    model = DIMRefinement(channels=8)
    spec = model.engine_spec()
    built = build_manifest("lm-refine", GraphModule(model, spec), None, dict(shipped.provenance),
                           licence_text(spec, ["eg1800-train", "backgrounds"]))
    built = replace(built, metrics=dict(shipped.metrics), speed=dict(shipped.speed))
    assert built.dump(tmp_path / "lm-refine.json").read_bytes() == path.read_bytes()
