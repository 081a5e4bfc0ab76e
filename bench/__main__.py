"""``python -m bench``: run memoryd's benchmarks and write docs/benchmarks.md.

    python -m bench                      # everything (about 1–2 hours on 2 cores)
    python -m bench --quick              # small N, under 2 minutes (the test suite runs it)
    python -m bench --only quality       # parts: quality, ingest, latency, million, chat, load,
                                         #        contention
    python -m bench --embedder minilm --embedder mpnet
                                         # the first embedder runs every part; each further
                                         # one runs --extra-parts (quality, latency) at
                                         # --extra-sizes (the smallest size: 10k); columns
                                         # side by side

Only a full run rewrites docs/benchmarks.md; a quick or partial run writes
$TMPDIR/memoryd-benchmarks-quick.md (or -partial.md) unless ``--out`` says where.

The servers get the bench's settings, not the caller's ``MEMORYD_*`` variables, except
plugins' own sections: ``MEMORYD_PLUGIN_GGUF__MODEL_PATH=model.gguf python -m bench
--embedder gguf`` benchmarks a GGUF embedding model.

Everything runs against a real memoryd started as a subprocess on 127.0.0.1
and driven through its HTTP API; every loop is bounded by a count or a time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs

from bench import locomo_eval as le
from bench.report import render, render_many
from bench.runner import (
    ES_PARTS,
    EXTRA_PARTS,
    FULL,
    PARTS,
    QUICK,
    REPO,
    extra_mode,
    log,
    run,
)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--out", type=Path, help="the report (default docs/benchmarks.md)")
    parser.add_argument("--work-dir", type=Path, help="scratch space (default: a temp dir)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse data dirs built in --work-dir",
    )
    parser.add_argument("--locomo", type=Path, default=le.DEFAULT_PATH, help="locomo10.json")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument(
        "--embedder",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help="run the bench once per embedder, the first with every part (--only), each "
        "further one with --extra-parts at --extra-sizes (repeatable; default: the default "
        "embedder once)",
    )
    parser.add_argument(
        "--sizes",
        default="",
        metavar="N[,N...]",
        help="the data dir sizes to build and measure (default: the mode's, 10000,100000; "
        "with --embedder, the first embedder's)",
    )
    parser.add_argument(
        "--extra-parts",
        default=",".join(EXTRA_PARTS),
        metavar="PARTS",
        help="the parts that each embedder after the first runs (those of --only among them; "
        "'all': every part of --only)",
    )
    parser.add_argument(
        "--extra-sizes",
        default="",
        metavar="N[,N...]",
        help="the data dir sizes each embedder after the first builds and measures (default: "
        "the smallest of the mode: 10000, or 300 with --quick)",
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite", "elasticsearch"),
        default="sqlite",
        help="the backend (elasticsearch: a local noida-db server; parts: quality, latency)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))} (known: {PARTS})")
    if args.storage == "elasticsearch":
        if args.only == ",".join(PARTS):
            parts = set(ES_PARTS)
        elif parts - set(ES_PARTS):
            raise SystemExit(f"--storage elasticsearch runs the parts {ES_PARTS} only")
    mode = QUICK if args.quick else FULL
    sizes = _sizes("--sizes", args.sizes)
    if sizes:
        mode = attrs.evolve(mode, sizes=sizes)
    with tempfile.TemporaryDirectory(prefix="memoryd-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        full = not args.quick and not sizes and parts == set(PARTS) and args.storage == "sqlite"
        # Only a full run rewrites docs/benchmarks.md; a quick or partial one writes beside it.
        spare = (
            Path(tempfile.gettempdir())
            / f"memoryd-benchmarks-{'quick' if args.quick else 'partial'}.md"
        )
        out = args.out or (REPO / "docs/benchmarks.md" if full else spare)
        command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        embedders = list(
            dict.fromkeys(n.strip() for v in args.embedder for n in v.split(",") if n.strip())
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        # Plugins' own settings (``MEMORYD_PLUGIN_GGUF__MODEL_PATH`` ...) reach every server.
        plugins = {k: v for k, v in os.environ.items() if k.startswith("MEMORYD_PLUGIN_")}
        if not embedders:
            results = run(args, parts, mode, work, command=command.strip(), env=plugins or None)
            out.write_text(render(results), encoding="utf-8")
        else:
            extra_parts, extra_sizes = _extra(args, parts)
            runs = []
            for i, name in enumerate(embedders):
                these, this_mode = (
                    (parts, mode) if i == 0 else (extra_parts, extra_mode(mode, extra_sizes))
                )
                at = "" if not these & {"latency", "chat", "load"} else f" at {this_mode.sizes}"
                log(f"embedder {name}: {', '.join(p for p in PARTS if p in these)}{at} ...")
                # Each its own data dirs: --reuse finds them again under the same name.
                place = work / f"embedder-{name}"
                place.mkdir(parents=True, exist_ok=True)
                env = {**plugins, "MEMORYD_EMBEDDER": name}
                runs.append(
                    (name, run(args, these, this_mode, place, command=command.strip(), env=env))
                )
            out.write_text(render_many(runs), encoding="utf-8")
        log(f"wrote {out}")
    return 0


def _extra(args: argparse.Namespace, parts: set[str]) -> tuple[set[str], tuple[int, ...] | None]:
    """The parts and sizes of the embedders after the first (``--extra-parts/-sizes``)."""
    named = {p.strip() for p in args.extra_parts.split(",") if p.strip()}
    if named == {"all"}:
        named = set(PARTS)
    unknown = named - set(PARTS)
    if unknown:
        raise SystemExit(
            f"--extra-parts: unknown parts: {', '.join(sorted(unknown))} (known: {PARTS})"
        )
    return named & parts, _sizes("--extra-sizes", args.extra_sizes) or None


def _sizes(flag: str, text: str) -> tuple[int, ...]:
    """``N[,N...]``: the sizes, ascending (empty: not given)."""
    try:
        sizes = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise SystemExit(f"{flag}: whole numbers, comma-separated: {text!r}") from None
    if any(n <= 0 for n in sizes):
        raise SystemExit(f"{flag}: sizes must be positive: {text!r}")
    return tuple(sorted(set(sizes)))


if __name__ == "__main__":
    raise SystemExit(main())
