"""Manifest parsing, safe shape expressions, and checking manifests against real peer graphs."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from livematte.errors import EngineError
from livematte.manifest import Role, evaluate_dim, load_manifest, validate_against_graph
from livematte.registry import DEFAULT_ENGINE, find_engine, list_engines

from conftest import MEDIAPIPE_ONNX, PEER_MANIFESTS, RVM_ONNX, write_manifest

REPO = Path(__file__).resolve().parents[1]


def _variant(tmp_path: Path, peer: str, onnx: Path, edit) -> Path:
    data = copy.deepcopy(PEER_MANIFESTS[peer])
    data["onnx"] = str(onnx)
    edit(data)
    return write_manifest(tmp_path, data, f"{peer}-variant")


def _require(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not available")


def test_peer_manifests_validate(mediapipe_manifest, selfie_manifest, sinet_manifest, rvm_manifest):
    for manifest in (mediapipe_manifest, selfie_manifest, sinet_manifest, rvm_manifest):
        validate_against_graph(manifest)
    assert rvm_manifest.state[0].input == "r1i:0" and rvm_manifest.state[3].output == "r4o"


def test_onnx_path_resolves_relative_to_manifest_and_dot_onnx_finds_json(tmp_path):
    _require(MEDIAPIPE_ONNX)
    data = dict(PEER_MANIFESTS["mediapipe"], onnx="model.onnx")
    (tmp_path / "model.onnx").symlink_to(MEDIAPIPE_ONNX)
    write_manifest(tmp_path, data, "model")
    manifest = load_manifest(tmp_path / "model.onnx")
    assert manifest.onnx_path == tmp_path.resolve() / "model.onnx"
    validate_against_graph(manifest)
    assert find_engine(str(tmp_path / "model.onnx")).name == data["name"]


def test_documented_example_validates_and_matches_the_package_peer(mediapipe_manifest):
    _require(MEDIAPIPE_ONNX)  # its relative onnx path points at ../shared/peers from docs/examples
    documented = find_engine(str(REPO / "docs" / "examples" / "obsbgr__mediapipe.json"))
    assert documented.onnx_path.resolve() == MEDIAPIPE_ONNX.resolve()
    # the doc shows what livematte.peers writes: the same I/O contract, only labels differ
    assert documented.input == mediapipe_manifest.input
    assert documented.outputs == mediapipe_manifest.outputs


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["input"].update(name="image"), "'image'"),
    (lambda d: d["input"].update(size=[144, 320]), "W=256"),
    (lambda d: d["input"].update(layout="NCHW"), "layout"),
    (lambda d: d["outputs"]["alpha"].update(name="mask"), "'mask' is not a graph output"),
])
def test_mediapipe_mismatches_are_one_line_engine_errors(tmp_path, edit, message):
    _require(MEDIAPIPE_ONNX)
    manifest = load_manifest(_variant(tmp_path, "mediapipe", MEDIAPIPE_ONNX, edit))
    with pytest.raises(EngineError) as info:
        validate_against_graph(manifest)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["state"][2].update(output="r3o_missing"), "state output for 'r3i:0' 'r3o_missing'"),
    (lambda d: d["state"].pop(), "r4i:0 are not fed"),
    (lambda d: d.update(constants=[]), "downsample_in_graph needs a constant"),
])
def test_rvm_state_mismatches_are_engine_errors(tmp_path, edit, message):
    _require(RVM_ONNX)
    with pytest.raises(EngineError, match=message):
        validate_against_graph(load_manifest(_variant(tmp_path, "rvm", RVM_ONNX, edit)))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other/2"), "not supported"),
    (lambda d: d["input"].pop("name"), "'manifest.input.name' is missing"),
    (lambda d: d["input"].update(layout="HWC"), "must be one of NCHW, NHWC"),
    (lambda d: d["outputs"]["alpha"].update(activation="relu"), "activation"),
    (lambda d: d["input"].update(mutliple_of=16), "'manifest.input.mutliple_of' is not a manifest field"),
    (lambda d: d.update(metrics_note="x"), "'manifest.metrics_note' is not a manifest field"),
    (lambda d: d.update(role="segmentation"), "must be one of matting, refinement"),
    (lambda d: d.update(role="refinement"), "needs 'coarse' and 'receptive_radius'"),
    (lambda d: d.update(receptive_radius=4), "belong to role 'refinement' engines"),
])
def test_malformed_manifest_names_the_field(tmp_path, edit, message):
    with pytest.raises(EngineError, match=message):
        load_manifest(_variant(tmp_path, "mediapipe", MEDIAPIPE_ONNX, edit))


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(EngineError, match="no manifest model.json beside it"):
        load_manifest(tmp_path / "model.onnx")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineError, match="not valid JSON"):
        load_manifest(tmp_path / "bad.json")
    data = dict(PEER_MANIFESTS["mediapipe"], onnx="absent.onnx")
    with pytest.raises(EngineError, match="not found"):
        validate_against_graph(load_manifest(write_manifest(tmp_path, data, "absent")))
    (tmp_path / "junk.onnx").write_bytes(b"definitely not protobuf")
    data = dict(PEER_MANIFESTS["mediapipe"], onnx="junk.onnx")
    with pytest.raises(EngineError, match="not a valid ONNX model"):
        validate_against_graph(load_manifest(write_manifest(tmp_path, data, "junk")))


def test_state_shape_expressions_round_up_and_refuse_code():
    assert evaluate_dim("H/16", 144, 256) == 9
    assert evaluate_dim("H/16", 150, 256) == 10
    assert evaluate_dim("(W + 2) // 4 * 2 - 1", 100, 30) == 15
    assert evaluate_dim(7, 1, 1) == 7
    for bad in ("__import__('os').system('true')", "H ** 2", "W/0", "H +", "open"):
        with pytest.raises(EngineError):
            evaluate_dim(bad, 144, 256)


def test_state_expression_checked_at_load_time(tmp_path):
    def edit(d):
        d["state"][0]["shape"] = [1, "H.real", "W", 16]
    with pytest.raises(EngineError, match="may only use"):
        load_manifest(_variant(tmp_path, "rvm", RVM_ONNX, edit))


def test_graph_size_policy(rvm_manifest, mediapipe_manifest):
    assert mediapipe_manifest.graph_size(1080, 1920) == (144, 256)
    # downsample_in_graph: the frame goes in whole, the ratio goes in as a constant
    assert rvm_manifest.graph_size(1080, 1920) == (1080, 1920)
    assert rvm_manifest.ratio_for(1080, 1920) == 0.25
    assert rvm_manifest.ratio_for(480, 640) == 0.5


def test_registry_unknown_engine_lists_what_is_installed():
    installed = [m.name for m in list_engines()]
    with pytest.raises(EngineError) as info:
        find_engine("no-such-engine")
    text = str(info.value)
    assert "no-such-engine" in text
    assert all(name in text for name in installed)
    if DEFAULT_ENGINE not in installed:
        with pytest.raises(EngineError, match="default engine .* is not installed"):
            find_engine(DEFAULT_ENGINE)


def test_installed_engines_validate():
    for manifest in list_engines():
        validate_against_graph(manifest)
        json.loads(manifest.manifest_path.read_text(encoding="utf-8"))


SHIPPED = sorted((REPO / "engines").rglob("*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_manifests_are_rewritten_byte_for_byte(tmp_path, path):
    manifest = load_manifest(path)
    written = manifest.dump(tmp_path / path.name)
    assert written.read_bytes() == path.read_bytes()


def test_dump_round_trips_every_part_of_the_format(tmp_path, rvm_manifest, mediapipe_manifest):
    refine = load_manifest(REPO / "engines" / "refinement" / "lm-refine.json")
    documented = load_manifest(REPO / "docs" / "examples" / "obsbgr__mediapipe.json")
    # RVM: downsample rules, a ratio constant, state, a foreground output; lm-refine: the
    # refinement keys and nested metrics; the documented example: a relative ../ graph path
    for manifest in (rvm_manifest, mediapipe_manifest, refine, documented):
        moved = tmp_path / manifest.manifest_path.parent.name
        moved.mkdir(exist_ok=True)
        again = load_manifest(manifest.dump(moved / manifest.manifest_path.name))
        assert again == manifest
        assert again.to_dict() == manifest.to_dict()
    assert refine.role is Role.REFINEMENT and refine.coarse.name == "coarse" and refine.receptive_radius == 8


def test_refinement_engine_validates_but_is_not_a_matting_engine():
    path = REPO / "engines" / "refinement" / "lm-refine.json"
    validate_against_graph(load_manifest(path))  # its coarse input counts as fed
    with pytest.raises(EngineError, match="is a refinement engine, not a matting engine"):
        find_engine(str(path))
