"""training/: models, losses, pseudo alphas, a tiny real training run, export round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livematte.manifest import load_manifest, validate_against_graph  # noqa: E402
from training import losses as L  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.data.pseudo_alpha import solve_one, trimap_from_mask  # noqa: E402
from training.models.blocks import ConvLSTMCell  # noqa: E402
from training.models.registry import build_model, model_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TINY = REPO / "training" / "configs" / "tiny.json"
EG1800 = SHARED / "data" / "eg1800-train"
needs_data = pytest.mark.skipif(not (EG1800 / "image").is_dir() or not (SHARED / "peers").is_dir(),
                                reason="../shared data and peers not available")


@pytest.mark.parametrize("name", ["shm-mobile", "disentangled-mobile"])
def test_scratch_models_shapes_and_state(name: str) -> None:
    model = build_model(name).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
        assert out["trimap"].shape == (2, 3, 64, 96)
        assert out["alpha"].shape == (2, 1, 64, 96)
        assert torch.all((out["alpha"] >= 0) & (out["alpha"] <= 1))
        # fusion: alpha = F + U * alpha_r
        p = out["trimap_prob"]
        assert torch.allclose(out["alpha"], p[:, 2:3] + p[:, 1:2] * out["alpha_r"], atol=1e-6)
    assert set(model.parameter_groups()) == {"trimap", "alpha", "recurrent"}


@needs_data
def test_seeded_model_stride2_logits_equal_mediapipe_pooled() -> None:
    # the 1x1 conv that replaces MediaPipe's full-resolution last layer must be that layer, 2x2-averaged
    from training.models.disentangled import SeededDisentangledMatting
    model = SeededDisentangledMatting(SHARED / "peers" / "obsbgr__mediapipe.onnx", hidden=4, freeze_until="segment:0")
    src = torch.rand(2, 3, 144, 256)
    with torch.no_grad():
        (full,), taps = model.graph(src.permute(0, 2, 3, 1), taps=("add_9__xeno_compat__1:0",))
        pooled = torch.nn.functional.avg_pool2d(full.permute(0, 3, 1, 2), 2)
        assert torch.allclose(model.seg(taps["add_9__xeno_compat__1:0"]), pooled, atol=1e-5)
        out = model(src)
    assert out["alpha"].shape == (2, 1, 72, 128) and out["state"][0].shape == (2, 4, 18, 32)
    trained = {id(p) for group in model.parameter_groups().values() for p in group}
    assert not any(id(p) in trained for p in model.seg.parameters())  # frozen with the graph


@needs_data
def test_size_free_graph_matches_at_its_size_and_follows_other_sizes() -> None:
    # size_free must not change the graph where it was converted, and must make
    # its global pooling global at another aspect (a fixed 16x16 kernel on a
    # 9x16 feature map would fail or pool the wrong area)
    import onnxruntime as ort

    from livematte.torch_graph import OnnxTorchGraph
    square = SHARED / "peers" / "obsbgr__selfie_segmentation.onnx"
    graph = OnnxTorchGraph(square, free_batch=True, size_free=True)
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    session = ort.InferenceSession(str(square), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        (got,), _ = graph(torch.from_numpy(x))
        assert np.abs(got.numpy() - want).max() < 1e-5
        _, taps = graph(torch.rand(2, 144, 256, 3), taps=("add_13__xeno_compat__1:0",), outputs=False)
    assert taps["add_13__xeno_compat__1:0"].shape == (2, 16, 72, 128)
    with pytest.raises(RuntimeError):  # without size_free the converted kernels tie it to 256x256
        with torch.no_grad():
            OnnxTorchGraph(square, free_batch=True)(torch.rand(1, 144, 256, 3))


@needs_data
def test_square_seeded_model_runs_at_every_aspect_and_segments_like_mediapipe() -> None:
    from training.models.disentangled import SeededDisentangledMatting
    square = SHARED / "peers" / "obsbgr__selfie_segmentation.onnx"
    model = SeededDisentangledMatting(square, hidden=4, freeze_until=None, seed="square", size_free=True).eval()
    with torch.no_grad():
        for h, w in ((144, 256), (256, 192), (256, 144)):
            out = model(torch.rand(1, 3, h, w))
            assert out["alpha"].shape == (1, 1, h // 2, w // 2) and out["state"][0].shape == (1, 4, h // 8, w // 8)
        # untrained heads: the foreground probability is MediaPipe's person probability, unknown near 0
        src = torch.rand(1, 3, 256, 256)
        (person,), _ = model.graph(src.permute(0, 2, 3, 1))
        pooled = torch.nn.functional.avg_pool2d(person.permute(0, 3, 1, 2), 2)
        prob = model(src)["trimap_prob"]
    assert float(prob[:, 1].max()) < 0.05
    assert float(((prob[:, 2:] > 0.5) == (pooled > 0.5)).float().mean()) > 0.97
    assert {"pretrained", "trimap", "alpha", "recurrent"} == set(model.parameter_groups())


@needs_data
def test_full_resolution_alpha_head_starts_from_a_stride2_run(tmp_path: Path) -> None:
    """A run may swap the stride-2 alpha decoder for the full-resolution one on
    trained weights: everything else loads, the new layers are named."""
    from training.models.disentangled import SeededDisentangledMatting
    from training.train import load_initial_weights

    square = SHARED / "peers" / "obsbgr__selfie_segmentation.onnx"
    stride2 = SeededDisentangledMatting(square, hidden=4, freeze_until=None, seed="square", size_free=True)
    torch.save({"model": stride2.state_dict()}, tmp_path / "final.pt")
    full = SeededDisentangledMatting(square, hidden=4, freeze_until=None, seed="square", size_free=True,
                                     full_resolution_alpha=True).eval()
    logged: list[str] = []
    load_initial_weights(full, tmp_path / "final.pt", torch.device("cpu"), logged.append)
    assert len(logged) == 1 and "alpha.up.conv.weight" in logged[0] and "not used: alpha.out.weight" in logged[0]
    assert torch.equal(full.unknown[1].weight, stride2.unknown[1].weight)
    with torch.no_grad():
        out = full(torch.rand(1, 3, 256, 192))
    assert out["alpha"].shape == (1, 1, 256, 192) and out["trimap_prob"].shape == (1, 3, 128, 96)
    assert "full-resolution alpha" in full.engine_spec().family


def test_edge_band_is_the_ring_around_the_masks_contour() -> None:
    from training.evaluate import EDGE_BAND, edge_band

    mask = np.zeros((100, 100), np.uint8)
    mask[30:70, 30:70] = 255
    band = edge_band(mask)
    assert band[30, 50] and band[30 - EDGE_BAND, 50] and band[29 + EDGE_BAND, 50]
    assert not band[50, 50] and not band[30 - EDGE_BAND - 2, 50] and not band[0, 0]


@needs_data
def test_clip_dataset_gives_each_batch_one_size_in_turn() -> None:
    from training.data.clips import ClipConfig, load_backgrounds
    from training.data.dataset import ClipDataset
    from training.train import split_portraits
    cfg = TrainConfig.load(TINY)
    train_set, _ = split_portraits(cfg)
    backgrounds = load_backgrounds(cfg.resolve(cfg.backgrounds))[:4]
    data = ClipDataset(train_set, backgrounds, ClipConfig(length=1, p_squash=0.0), 6, sizes=[(48, 64), (64, 48)], batch=2)
    assert [tuple(data[i]["src"].shape[-2:]) for i in range(6)] == [(48, 64)] * 2 + [(64, 48)] * 2 + [(48, 64)] * 2


@needs_data
def test_video_clips_are_consecutive_real_frames_with_their_masks() -> None:
    from training.data.clips import ClipConfig, ClipSynthesizer
    from training.data.videos import excerpt, load_sequences

    davis = SHARED / "data" / "davis-person"
    (sequence,) = load_sequences(davis, ["tennis"])
    assert sequence.frames.shape[:3] == sequence.masks.shape and sequence.frames.shape[-1] == 3
    frames, masks = excerpt(np.random.default_rng(0), sequence, 6)
    # each frame is one of the sequence's, mirrored or not, with that frame's own mask
    for frame, mask in zip(frames, masks):
        index = [i for i, f in enumerate(sequence.frames) if np.array_equal(f, frame) or np.array_equal(f[:, ::-1], frame)]
        assert len(index) == 1
        assert np.array_equal(mask, sequence.masks[index[0]]) or np.array_equal(mask, sequence.masks[index[0]][:, ::-1])
    synth = ClipSynthesizer([], [], ClipConfig(length=4, p_video=1.0, p_cut=0.0), videos=[sequence])
    clip = synth.clip(np.random.default_rng(1), (64, 48))
    assert clip["src"].shape == (4, 64, 48, 3) and clip["mask"].shape == (4, 64, 48, 1)
    assert clip["has_fb"] == 0 and 0.0 < clip["mask"].mean() < 1.0  # the person is in view, not the whole view
    with pytest.raises(FileNotFoundError):
        load_sequences(davis, ["no-such-sequence"])


def test_evaluation_leaves_out_the_sequences_any_engine_trained_on(tmp_path: Path) -> None:
    import json

    from training.evaluate import Model, trained_sequences

    raw = json.loads((REPO / "engines" / "lm-realtime.json").read_text())
    raw["provenance"]["video_sequences"] = {"davis-person": ["hike"]}
    (tmp_path / "lm-realtime.onnx").symlink_to(REPO / "engines" / "lm-realtime.onnx")
    (tmp_path / "trained.json").write_text(json.dumps(raw))
    trained, plain = load_manifest(tmp_path / "trained.json"), load_manifest(REPO / "engines" / "lm-realtime.json")
    models = [Model("a", plain, True), Model("b", trained, True)]
    assert trained_sequences(models) == {"hike"}
    assert trained_sequences(models, ("tennis",)) == {"hike", "tennis"}
    assert trained_sequences(models[:1]) == frozenset()


def test_evaluation_can_add_each_engine_with_the_mirror_image_averaged_in(tmp_path: Path) -> None:
    from training.evaluate import load_models

    plain, flipped = load_models(["lm-live"], (), tmp_path, flip_average=True)
    assert (plain.label, flipped.label) == ("lm-live", "lm-live+flip") and flipped.manifest is plain.manifest
    with plain.matter() as a, flipped.matter() as b:
        assert not a.flip_average and b.flip_average


def test_evaluation_can_enlarge_every_matte_with_another_upsampler_but_records_only_the_default(
        tmp_path: Path) -> None:
    from training.evaluate import load_models, main

    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    guided, = load_models(["lm-live"], (), tmp_path)
    bilinear, = load_models(["lm-live"], (), tmp_path, upsampler="bilinear")
    with guided.matter() as a, bilinear.matter() as b:
        assert np.abs(a.infer(frame).alpha - b.infer(frame).alpha).max() > 1e-3
    with pytest.raises(SystemExit) as exit_info:
        main(["lm-live", "--record", "--upsampler", "bilinear"])
    assert exit_info.value.code == 2


def test_stage_lr_scale_sets_each_group_rate() -> None:
    from training.config import StageConfig
    from training.train import configure_stage, make_optimizer
    model = build_model("disentangled-mobile")
    stage = StageConfig("s", 10, lr=1e-3, train=["trimap", "alpha"], lr_scale={"trimap": 0.1})
    groups = configure_stage(model, stage)
    optimizer = make_optimizer(groups, L.UncertaintyWeighting(), stage)
    assert [g["scale"] for g in optimizer.param_groups] == [0.1, 1.0, 1.0]
    assert not any(p.requires_grad for p in model.parameter_groups()["recurrent"])
    with pytest.raises(ValueError, match="unknown parameter groups"):
        configure_stage(model, StageConfig("s", 10, train=["alpha"], lr_scale={"nope": 0.1}))


def test_weight_average_ramps_up_then_follows_the_weights_and_survives_a_resume() -> None:
    from training.config import StageConfig
    from training.train import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    start = model[0].weight.detach().clone()
    average = WeightAverage(model, 0.99)
    assert "1.num_batches_tracked" not in average.shadow  # integer counters are not averaged
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    average.update(model)  # first update: decay 2/11, not 0.99, so the start is mostly forgotten
    torch.testing.assert_close(average.shadow["0.weight"], start * 2 / 11 + 9 / 11)
    resumed = WeightAverage(model, 0.99)
    resumed.load_state_dict(average.state_dict())
    for _ in range(2000):
        resumed.update(model)
    resumed.copy_to(model)
    torch.testing.assert_close(model[0].weight, torch.ones_like(start), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="ema must be in"):
        StageConfig("s", 10, ema=1.0)


def test_unknown_model_name_lists_known() -> None:
    with pytest.raises(ValueError, match="disentangled-mediapipe"):
        build_model("nope")
    assert "shm-mobile" in model_names()


def test_convlstm_state_changes_output() -> None:
    torch.manual_seed(0)
    cell = ConvLSTMCell(4, 6)
    x = torch.rand(1, 4, 5, 7)
    h1, state = cell(x, None)
    h2, _ = cell(x, state)
    assert not torch.allclose(h1, h2)  # the same input gives a different output once state is carried
    h3, _ = cell(x, None)
    assert torch.allclose(h1, h3)


def test_trimap_from_alpha_classes() -> None:
    alpha = torch.zeros(1, 1, 9, 9)
    alpha[..., :, 5:] = 1.0
    alpha[..., :, 4] = 0.5
    target = L.trimap_from_alpha(alpha, band=1)[0]
    assert (target[:, :3] == 0).all() and (target[:, 6:] == 2).all()
    assert (target[:, 3:6] == 1).all()


def test_losses_zero_at_truth_and_positive_off_it() -> None:
    gt = torch.rand(2, 1, 8, 8)
    fg, bg = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert float(L.alpha_prediction_loss(gt, gt)) < 1e-5
    assert float(L.compositional_loss(gt, gt, fg, bg)) < 1e-5
    assert float(L.alpha_prediction_loss(gt * 0.5, gt)) > 0.05
    seq = torch.rand(1, 4, 1, 8, 8)
    assert float(L.temporal_coherence_loss(seq + 0.3, seq)) < 1e-6  # a constant offset does not flicker
    assert float(L.temporal_coherence_loss(seq + torch.rand_like(seq), seq)) > 0.01


def test_uncertainty_weighting_learns_to_downweight_a_noisy_task() -> None:
    w = L.UncertaintyWeighting()
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        w({"trimap": torch.tensor(4.0), "alpha": torch.tensor(0.25)}).backward()
        opt.step()
    sig = w.sigmas()
    assert sig["trimap"] > sig["alpha"]  # the larger loss gets the larger sigma (smaller weight)
    assert abs(sig["trimap"] ** 2 - 4.0) < 0.2 and abs(sig["alpha"] ** 2 - 0.25) < 0.05


def test_trimap_from_mask_band() -> None:
    mask = np.zeros((40, 40))
    mask[:, 20:] = 1
    tri = trimap_from_mask(mask, band=3)
    assert (tri[:, :16] == 0).all() and (tri[:, 24:] == 1).all()
    assert (tri[:, 18:22] == 0.5).all()


@needs_data
def test_pseudo_alpha_is_soft_only_in_the_band(tmp_path: Path) -> None:
    image = sorted((EG1800 / "image").glob("*.jpg"))[0]
    out = solve_one(image, EG1800 / "mask" / f"{image.stem}.png", tmp_path)
    import cv2

    alpha = cv2.imread(str(out.alpha), cv2.IMREAD_GRAYSCALE)
    mask = cv2.resize(cv2.imread(str(EG1800 / "mask" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE),
                      alpha.shape[::-1], interpolation=cv2.INTER_AREA) / 255.0
    tri = trimap_from_mask(mask, 4)
    soft = (alpha > 5) & (alpha < 250)
    assert soft.any(), "closed-form matting should give soft values at the edge"
    assert not soft[tri != 0.5].any(), "outside the unknown band the mask is kept"


@needs_data
def test_tiny_training_run_learns_resumes_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.data.clips import load_backgrounds
    from training.data.dataset import ClipDataset, Teacher
    from training.export import export_run
    from training.train import clip_losses, configure_stage, split_portraits, train

    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = TrainConfig.load(TINY)

    # the loss goes down: a few optimiser steps on one real clip batch
    model = build_model(cfg.model, **cfg.resolved_model_args())
    stage = cfg.stages[1]
    params = [p for group in configure_stage(model, stage).values() for p in group]
    train_set, _ = split_portraits(cfg)
    backgrounds = load_backgrounds(cfg.resolve(cfg.backgrounds))
    data = ClipDataset(train_set, backgrounds, cfg.clip_config(stage.clip_length), 2, teacher=Teacher(cfg.resolve(cfg.teacher)))
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in data[0]}
    opt = torch.optim.Adam(params, lr=1e-3)
    first = None
    for _ in range(8):
        loss, _ = clip_losses(model, batch, stage, None)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final, _ = clip_losses(model, batch, stage, None)
    assert float(final) < 0.9 * first

    # the whole schedule runs, checkpoints, and resumes where it stopped
    run = tmp_path / "run"
    result = train(cfg, run, log=lambda m: None)
    assert {"SAD", "MSE", "IoU", "mask_SAD", "mask_MSE", "mask_IoU"} <= set(result)  # labels and hand masks
    blob = torch.load(run / "checkpoint.pt", weights_only=False)
    assert blob["stage"] == len(cfg.stages) and blob["step"] == 0
    logs: list[str] = []
    train(cfg, run, resume=True, log=logs.append)
    assert any("resumed" in m for m in logs)
    # a stage added to a finished run continues from its last stage boundary, with its own optimiser
    from training.config import StageConfig
    cfg.stages.append(StageConfig("more", 1, batch=1, train=["alpha"], losses={"alpha": 1.0}))
    train(cfg, run, resume=True, log=lambda m: None)
    assert (run / "stage3-more.pt").is_file() and (run / "stage1-trimap.pt").is_file()

    # export: ONNX Runtime == torch within 1e-4 (checked inside), manifest valid against its graph
    manifest_path = export_run(run / "final.pt", "tiny-engine", tmp_path / "engines", "pytest")
    manifest = load_manifest(manifest_path)
    validate_against_graph(manifest)
    assert [s.input for s in manifest.state] == ["h_in", "c_in"]
    assert "research" in manifest.license

    # other sizes than it trained at: refused for a graph with its sizes baked in, exported for a size-free one
    with pytest.raises(ValueError, match="not built size-free"):
        export_run(run / "final.pt", "tiny-other", tmp_path / "engines", "pytest", sizes=[(96, 160)])
    blob = torch.load(run / "final.pt", weights_only=False)
    blob["config"]["model_args"]["size_free"] = True
    torch.save(blob, run / "size-free.pt")
    sizes = [(96, 160), (160, 96)]
    manifest = load_manifest(export_run(run / "size-free.pt", "tiny-sizes", tmp_path / "engines", "pytest", sizes=sizes))
    assert list(manifest.input.sizes) == sizes
    assert manifest.provenance["trained_sizes"] == [list(size) for size in cfg.input_sizes()]


def test_one_exporter_writes_a_multi_aspect_recurrent_engine_the_runtime_runs(tmp_path: Path) -> None:
    # a model trained at several aspects: dynamic H/W, its sizes declared, state shapes per size,
    # torch == ONNX Runtime at every size (checked inside), and the runtime picks each frame's size
    from livematte.engine import Matter
    from training.export import export_engine, licence_text

    torch.manual_seed(0)
    model = build_model("disentangled-mobile", hidden=8)
    spec = model.engine_spec()
    sizes = [(32, 64), (64, 48)]
    path = export_engine(model, spec, "multi", tmp_path, sizes, {"training_command": "pytest"},
                         licence_text(spec, ["eg1800-train"]), multiple_of=16)
    manifest = load_manifest(path)
    validate_against_graph(manifest)
    assert manifest.input.sizes == tuple(sizes) and manifest.input.size is None
    assert [s.shape for s in manifest.state] == [(1, 8, "H/16", "W/16")] * 2
    assert "research use only" in manifest.license and "random values" in manifest.license
    with Matter(manifest, scene_cut_threshold=None, person_crop=False) as matter:
        assert matter.infer(np.zeros((360, 640, 3), np.uint8)).alpha.shape == (360, 640)
        assert matter._graph_size == (32, 64)
        assert matter.infer(np.zeros((800, 600, 3), np.uint8)).alpha.shape == (800, 600)
        assert matter._graph_size == (64, 48)


def test_one_exporter_writes_single_image_and_refinement_families(tmp_path: Path) -> None:
    from livematte.manifest import Role
    from training.export import export_engine, licence_text
    from training.models.dim import DIMRefinement

    shm = build_model("shm-mobile")
    spec = shm.engine_spec()
    manifest = load_manifest(export_engine(shm, spec, "shm", tmp_path, [(64, 96)], {}, licence_text(spec, [])))
    validate_against_graph(manifest)
    assert manifest.state == () and manifest.input.size == (64, 96) and "Semantic Human Matting" in manifest.description
    refine = DIMRefinement(channels=4)
    spec = refine.engine_spec()
    manifest = load_manifest(export_engine(refine, spec, "refine", tmp_path, None, {}, licence_text(spec, [])))
    validate_against_graph(manifest)
    assert manifest.role is Role.REFINEMENT and manifest.receptive_radius == DIMRefinement.receptive_radius()
    assert manifest.input.size is None and manifest.coarse is not None


@needs_data
def test_export_writes_the_shipped_manifest() -> None:
    """What training.export writes for lm-realtime's config is the shipped manifest, save the
    revision it records and the numbers measured later."""
    from dataclasses import replace

    from training.export import GraphModule, build_manifest, run_export_args

    shipped = load_manifest(REPO / "engines" / "lm-realtime.json")
    cfg = TrainConfig.load(REPO / "training" / "configs" / "lm-realtime.json")
    model = build_model(cfg.model, **cfg.resolved_model_args())
    spec = model.engine_spec()
    args = run_export_args(cfg, spec, shipped.provenance["training_command"])
    built = build_manifest("lm-realtime", GraphModule(model, spec), **args)
    built = replace(built, provenance={**built.provenance, "git_revision": shipped.provenance["git_revision"]},
                    metrics=shipped.metrics, speed=shipped.speed)
    assert built.to_dict() == shipped.to_dict()


def test_evaluate_record_rewrites_only_the_measured_metrics_and_speed(tmp_path: Path) -> None:
    import shutil

    from training.evaluate import Model, record_in_manifest

    path = Path(shutil.copy(REPO / "engines" / "lm-mobile-recurrent.json", tmp_path))
    before = load_manifest(path)
    row = {"set-a": {"SAD": 1.234567891}, "speed": {"engine_ms_720p": 4.5678}}
    record_in_manifest(Model(before.name, before, True), row, "python -m training.evaluate x --record")
    after = load_manifest(path)
    assert after.metrics == {**before.metrics, "set-a": {"SAD": 1.23457}} and after.speed["ms_per_frame"] == 4.57
    assert after == before and after.provenance == before.provenance and after.license == before.license
    # a run that measured some sets only (--sets) keeps the others and the speed it did not measure
    record_in_manifest(Model(after.name, after, True), {"set-a": {"SAD": 2.0}}, "python -m training.evaluate x --record")
    again = load_manifest(path)
    assert again.metrics == {**before.metrics, "set-a": {"SAD": 2.0}} and again.speed == after.speed
