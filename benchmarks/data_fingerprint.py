"""How much the hash cache saves: fingerprinting a data folder cold (no cache) and warm.

A folder of ``--files`` small files (``--size`` bytes each, all under the hashing size)
in nested folders of 100; their modification times are set an hour back and the
benchmark waits two seconds, as for data that is not being written (fresh files are not
cached). Each round fingerprints it

* ``cold``: with an empty cache file (every file read and hashed, the cache written);
* ``warm``: with the cache the cold pass left (every file only stat'ed);

and, as a reference, ``stat only``: the same walk with hashing switched off
(``hash_below_bytes=0``), the least a fingerprint can cost. Prints the medians and the
median per-round ratio warm/cold (the page cache is warm for both: the saving measured is
reading and hashing, not the disk).

    .venv/bin/python benchmarks/data_fingerprint.py [--files 2000] [--size 4096] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from workbench.runs.fingerprint import ManifestCache, fingerprint_data


def make_data(root: Path, files: int, size: int) -> Path:
    data = root / "data"
    back = time.time() - 3600
    for i in range(files):
        folder = data / f"part-{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (back, back))
    return data


def timed(data: Path, root: Path, cache_file: Path | None, hash_below: int) -> tuple[float, int]:
    cache = ManifestCache(cache_file) if cache_file is not None else None
    began = time.perf_counter()
    fp = fingerprint_data([data], root=root, hash_below_bytes=hash_below, cache=cache)
    return time.perf_counter() - began, fp.hashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-data-bench-") as tmp:
        root = Path(tmp)
        data = make_data(root, args.files, args.size)
        time.sleep(2.1)  # files changed in the last two seconds are not cached
        cache_file = root / "cache" / "data-manifest.json"
        cold, warm, bare, ratios = [], [], [], []
        for _ in range(args.rounds):
            cache_file.unlink(missing_ok=True)
            c, hashed_cold = timed(data, root, cache_file, 8 << 20)
            w, hashed_warm = timed(data, root, cache_file, 8 << 20)
            b, _ = timed(data, root, None, 0)
            assert hashed_cold == args.files and hashed_warm == 0, (hashed_cold, hashed_warm)
            cold.append(c)
            warm.append(w)
            bare.append(b)
            ratios.append(w / c)
    print(f"{args.files} files of {args.size} bytes, {args.rounds} rounds (medians)")
    print(f"  cold (hash every file, write the cache): {statistics.median(cold) * 1000:8.1f} ms")
    print(f"  warm (cache hits, stat only):            {statistics.median(warm) * 1000:8.1f} ms")
    print(f"  stat only, no hashing, no cache:         {statistics.median(bare) * 1000:8.1f} ms")
    print(f"  ratio warm/cold: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
