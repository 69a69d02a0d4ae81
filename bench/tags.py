"""Tag creation benchmark: one ``POST /api/ingest`` body (CSV) whose rows each name a new tag.

``genba.node.ingest`` parses and validates the body and registers its tags. The baseline is the
same number of rows naming one tag, measured in the same run: what parsing costs with no tag
to create. The ratio shows what creating the tags adds; with tag creation linear it stays
flat as the count grows (issue 14: 20,000 new tags in one CSV once took 26 s, quadratic).
Prints a Markdown table: the median of ``--runs`` runs per size.

    python bench/tags.py [--tags 1000,5000,20000,100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from genba.deadletter import DeadLetters
from genba.node import ingest
from genba.tags import TagRegistry

T_MS = 1_767_225_600_000


def _body(rows: int, distinct: bool) -> bytes:
    lines = (f"s/a/l/m/t{i if distinct else 0},{T_MS + i},{i}\n" for i in range(rows))
    return ("tag,timestamp,value\n" + "".join(lines)).encode()


def _time(body: bytes, runs: int) -> float:
    secs = []
    for _ in range(runs):
        registry = TagRegistry()  # every run creates the tags anew
        t0 = time.perf_counter()
        batch, _ = ingest(
            body, "text/csv", registry=registry, now_ns=time.time_ns(),
            dead_letters=DeadLetters(None), max_future_s=300,
        )  # fmt: skip
        secs.append(time.perf_counter() - t0)
        assert len(batch) == body.count(b"\n") - 1
    return statistics.median(secs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tags", default="1000,5000,20000,100000", help="sizes, comma-separated")
    ap.add_argument("--runs", type=int, default=5, help="runs per size (median reported)")
    args = ap.parse_args()
    print(f"one CSV body, parsed and validated by genba.node.ingest; median of {args.runs}\n")
    print("| rows | new tags: s | one tag (baseline): s | ratio to baseline | µs per new tag |")
    print("|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.tags.split(",")):
        new = _time(_body(n, True), args.runs)
        one = _time(_body(n, False), args.runs)
        print(f"| {n:,} | {new:.3f} | {one:.3f} | {new / one:.1f}× | {1e6 * new / n:.1f} |")


if __name__ == "__main__":
    main()
