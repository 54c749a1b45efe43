"""`verify` throughput of this checkout beside an earlier revision, on the same folder, in one run.

    python benchmarks/verify_before_after.py --ref 830aba5 [-n 1000] [--workers 1,2] [--json OUT.json]

The earlier revision is checked out into a temporary git worktree and imported from there (``PYTHONPATH``), so
both versions run the same way: each (version, worker count) in a fresh process calling
``synthguard.desk.batch.verify`` on one folder of ``n`` 512 px images (``synthguard.bench.verify_bench.make_folder``,
written once), default policy, classifier on, no ledger, no audit. Times include starting the workers (what a user
waits for). Then the JSONL files are compared line by line: identical, or which fields differ and by how much.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, sys, time
from pathlib import Path
from synthguard.desk.batch import VerifySettings, verify
from synthguard.policy import load_policy
folder, home, workers, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
start = time.perf_counter()
run = verify([folder], VerifySettings(policy=load_policy(None), home=home, use_ledger=False), workers=workers,
             audit=False, jsonl=out, overwrite=True)
seconds = time.perf_counter() - start
import synthguard
print(json.dumps({"seconds": seconds, "errors": run.errors, "files": len(run.lines),
                  "worker_peak_mb": list(run.worker_peak_mb), "code": str(Path(synthguard.__file__).parent)}))
"""


def _run(tree: Path, folder: Path, home: Path, workers: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "SYNTHGUARD_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", RUN, str(folder), str(home), str(workers), str(out)], env=env,
                          capture_output=True, text=True, check=False, cwd=home.parent)
    if done.returncode != 0:
        raise SystemExit(f"verify with {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["code"]) != tree / "synthguard":
        raise SystemExit(f"imported {result['code']}, not {tree / 'synthguard'}")
    return result


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return {prefix: value}
    return {prefix: value}


def compare(a: Path, b: Path) -> dict:
    """Lines identical, or per field: how many lines differ there and the largest numeric difference."""
    la, lb = a.read_text().splitlines(), b.read_text().splitlines()
    fields: dict[str, dict] = {}
    for x, y in zip(la, lb, strict=False):
        if x == y:
            continue
        fx, fy = _flatten(json.loads(x)), _flatten(json.loads(y))
        for key in sorted(set(fx) | set(fy)):
            if fx.get(key) == fy.get(key):
                continue
            entry = fields.setdefault(key, {"lines": 0, "max_abs_difference": 0.0})
            entry["lines"] += 1
            u, v = fx.get(key), fy.get(key)
            if isinstance(u, (int, float)) and isinstance(v, (int, float)):
                entry["max_abs_difference"] = max(entry["max_abs_difference"], abs(u - v))
            elif isinstance(u, list) and isinstance(v, list) and len(u) == len(v):
                flat_u = [t for row in u for t in (row if isinstance(row, list) else [row])]
                flat_v = [t for row in v for t in (row if isinstance(row, list) else [row])]
                diffs = [abs(p - q) for p, q in zip(flat_u, flat_v, strict=False)
                         if isinstance(p, (int, float)) and isinstance(q, (int, float))]
                entry["max_abs_difference"] = max([entry["max_abs_difference"], *diffs])
            else:
                entry.setdefault("example", [u, v])
    same = sum(x == y for x, y in zip(la, lb, strict=False))
    return {"lines": [len(la), len(lb)], "identical_lines": same, "differing_fields": fields}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("-n", type=int, default=1000, help="images in the folder (default 1000)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    sys.path.insert(0, str(ROOT))
    from synthguard.bench.verify_bench import make_folder  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.ref],
                       check=True)
        try:
            folder = tmp / "inbox"
            folder.mkdir()
            print(f"writing {args.n} images of 512 px", flush=True)
            make_folder(folder, args.n)
            home = tmp / "home"
            rows = []
            for label, tree in (("before", before), ("after", ROOT)):
                for w in workers:
                    out = tmp / f"{label}-w{w}.jsonl"
                    t0 = time.perf_counter()
                    result = _run(tree, folder, home, w, out)
                    rows.append({"version": label, "workers": w, "seconds": round(result["seconds"], 2),
                                 "files_per_second": round(args.n / result["seconds"], 2),
                                 "errors": result["errors"], "worker_peak_mb": result["worker_peak_mb"],
                                 "process_seconds": round(time.perf_counter() - t0, 2), "jsonl": out})
                    print(f"{label:6} {w} worker(s): {args.n / result['seconds']:.1f} files/s "
                          f"({result['seconds']:.1f} s), code from {result['code']}", flush=True)
            for w in workers:
                b = next(r for r in rows if r["version"] == "before" and r["workers"] == w)
                a = next(r for r in rows if r["version"] == "after" and r["workers"] == w)
                print(f"{w} worker(s): after / before = {a['files_per_second'] / b['files_per_second']:.2f}x")
            outputs = [r["jsonl"] for r in rows]
            after_same = len({p.read_bytes() for p in outputs if p.name.startswith("after")}) == 1
            before_same = len({p.read_bytes() for p in outputs if p.name.startswith("before")}) == 1
            diff = compare(outputs[0], next(p for p in outputs if p.name.startswith("after")))
            print(f"JSONL identical across worker counts: before {before_same}, after {after_same}")
            print(f"before vs after: {diff['identical_lines']} of {diff['lines'][0]} lines identical")
            for key, entry in diff["differing_fields"].items():
                print(f"  {key}: differs on {entry['lines']} line(s), largest difference "
                      f"{entry['max_abs_difference']:.3g}" + (f", e.g. {entry['example']}" if "example" in entry
                                                               else ""))
            figures = {"ref": args.ref, "n": args.n, "runs": [{k: v for k, v in r.items() if k != "jsonl"}
                                                              for r in rows],
                       "identical_across_workers": {"before": before_same, "after": after_same},
                       "before_vs_after": diff}
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2) + "\n")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)


if __name__ == "__main__":
    main()
