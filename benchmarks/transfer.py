"""Transfer check on the bundled sample: at equal epochs, fine-tuning each of the tutorial's strategies
from the related-task checkpoint (the sample's manufacturers) against training from scratch.

    .venv/bin/python benchmarks/transfer.py [--epochs 5] [--base-epochs 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--base-epochs", type=int, default=10)
    args = parser.parse_args()
    from fgvctune.comparison import compare
    from fgvctune.config import resolve
    from fgvctune.training.trainer import train
    from fgvctune.tutorial import SAMPLE, SETTINGS

    print(describe())
    quiet = lambda message: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        train(
            adapter="aircraft",
            data_dir=str(SAMPLE),
            adapter_options={"level": "manufacturer"},
            pretrained=False,
            epoch_size=args.base_epochs,
            output=base,
            log=quiet,
            progress=False,
            **SETTINGS,
        )
        config = resolve(adapter="aircraft", data_dir=str(SAMPLE), pretrained=False, epoch_size=args.epochs, **SETTINGS)
        transferred = compare(
            dataclasses.replace(config, ckpt_path=str(base / "best.ckpt")), Path(tmp) / "transfer", log=quiet
        )
        scratch = compare(config, Path(tmp) / "scratch", log=quiet)
    rows = [
        [t["strategy"], f"{t['top1']:.1%}", f"{s['top1']:.1%}", f"{t['top1'] - s['top1']:+.1%}"]
        for t, s in zip(transferred, scratch)
    ]
    print(
        f"sample, variant level (8 classes, chance 12.5%), {args.epochs} epochs each, 64 px; the starting "
        f"checkpoint learned the 3 manufacturers in {args.base_epochs} epochs"
    )
    print(table(["strategy", "from related-task checkpoint", "from scratch", "difference"], rows))


if __name__ == "__main__":
    main()
