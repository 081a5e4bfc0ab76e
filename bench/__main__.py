"""``python -m bench``: run memoryd's benchmarks and write docs/benchmarks.md.

    python -m bench                      # everything (about 1–2 hours on 2 cores)
    python -m bench --quick              # small N, under 2 minutes (the test suite runs it)
    python -m bench --only quality       # parts: quality, ingest, latency, million, chat, load,
                                         #        contention
    python -m bench --embedder minilm,e5 # every part once per embedder, columns side by side

Only a full run rewrites docs/benchmarks.md; a quick or partial run writes
$TMPDIR/memoryd-benchmarks-quick.md (or -partial.md) unless ``--out`` says where.

Everything runs against a real memoryd started as a subprocess on 127.0.0.1
and driven through its HTTP API; every loop is bounded by a count or a time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import locomo_eval as le
from bench.report import render, render_many
from bench.runner import ES_PARTS, FULL, PARTS, QUICK, REPO, log, run


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
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
        help="run the parts once per embedder (repeatable; default: the default embedder once)",
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
    with tempfile.TemporaryDirectory(prefix="memoryd-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        full = not args.quick and parts == set(PARTS) and args.storage == "sqlite"
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
        if not embedders:
            results = run(args, parts, mode, work, command=command.strip())
            out.write_text(render(results), encoding="utf-8")
        else:
            runs = []
            for name in embedders:
                log(f"embedder {name}: every part ...")
                # Each its own data dirs: --reuse finds them again under the same name.
                place = work / f"embedder-{name}"
                place.mkdir(parents=True, exist_ok=True)
                env = {"MEMORYD_EMBEDDER": name}
                runs.append((name, run(args, parts, mode, place, command=command.strip(), env=env)))
            out.write_text(render_many(runs), encoding="utf-8")
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
