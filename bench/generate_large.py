"""Times one generator run and checks its peak memory, so the large profile stays within budget.

Usage: .venv/bin/python bench/generate_large.py [--profile large] [--seed 1] [--out DIR] [--keep]
Exits 1 if the peak resident memory exceeds --max-rss-gib (default 24).
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
from typing import List, Optional

from ctxrec.synthetic.generator import OUTPUT_FILES, generate
from ctxrec.synthetic.profiles import PROFILES

GIB = 1024 ** 3


def peak_rss_gib() -> float:
  """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--profile", default="large", choices=sorted(PROFILES))
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--out", help="output folder (default: a temporary folder, deleted after)")
  parser.add_argument("--keep", action="store_true", help="keep the temporary output folder")
  parser.add_argument("--max-rss-gib", type=float, default=24.0)
  return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
  """Generates, prints time, peak RSS, row counts and file sizes; non-zero exit over budget."""
  args = parse_args(argv)
  scratch = None if args.out else tempfile.mkdtemp(prefix=f"ctxrec-{args.profile}-")
  out = args.out or os.path.join(scratch, "data")

  def progress(message: str) -> None:
    print(f"{message} (peak RSS {peak_rss_gib():.2f} GiB)", file=sys.stderr, flush=True)

  try:
    summary = generate(PROFILES[args.profile], args.seed, out, progress=progress)
    peak = peak_rss_gib()
    print(f"profile={args.profile} seed={args.seed} out={out}")
    print(f"wall_time_s={summary.elapsed_seconds:.1f} peak_rss_gib={peak:.2f}")
    print(f"users={summary.users} items={summary.items} sessions={summary.sessions} "
          f"events={summary.events} views={summary.views} conversions={summary.conversions}")
    for name in OUTPUT_FILES:
      print(f"{name}: {os.path.getsize(os.path.join(out, name)) / 1024 ** 2:.1f} MiB")
  finally:
    if scratch and not args.keep:
      shutil.rmtree(scratch, ignore_errors=True)
  if peak > args.max_rss_gib:
    print(f"peak RSS {peak:.2f} GiB exceeds {args.max_rss_gib} GiB", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
