"""Cost of reading every image header of an image-folder dataset before Ray starts, as JSON.

``validate`` and ``run`` call :func:`ftsweep.data.unreadable_images` once per folder dataset
(``ftsweep.config.checks.check_dataset_files``). This builds a folder of ``--images`` JPEGs
(``--classes`` classes, 90 % train / 10 % test, ``--side`` px) in a temporary directory, scans
its layout once (untimed, as ``validate`` has by then) and times the header pass with each
``--workers`` count, ``--repeats`` times (median; the files are in the page cache after the
first pass, so this is the local-disk figure: on network storage the threads overlap waits).

Usage: ``python bench/folder_headers.py [--images 10000] [--workers 1 8]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(root: Path, images: int, classes: int, side: int) -> Path:
    from PIL import Image

    per_class = images // classes
    for c in range(classes):
        for i in range(per_class):
            part = "test" if i < per_class // 10 else "train"
            folder = root / part / f"class{c:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (side, side * 3 // 4), (c % 256, i % 256, 40)).save(
                folder / f"{i}.jpg", quality=85
            )
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--side", type=int, default=128)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from ftsweep.data import get_dataset_info, unreadable_images

    with tempfile.TemporaryDirectory() as tmp:
        root = str(make_folder(Path(tmp) / "imgs", args.images, args.classes, args.side))
        info = get_dataset_info(root)  # the layout scan validate has already done
        n = info.num_train + info.num_test
        rows = []
        for workers in args.workers:
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                bad = unreadable_images(root, workers=workers)
                times.append(time.perf_counter() - t0)
            assert bad == []
            median = statistics.median(times)
            rows.append(
                {"workers": workers, "seconds": round(median, 3), "us_per_image": round(1e6 * median / n, 1)}
            )
    print(
        json.dumps(
            {
                "images": n,
                "side": args.side,
                "machine": platform.processor() or platform.machine(),
                "runs": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
