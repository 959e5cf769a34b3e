"""A CSV annotation file: one row per image, with path, label and (optionally) split columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import Listing, Problem, Sample
from fgvctune.data.splits import held_out, roles
from fgvctune.errors import DataError

PATH_COLUMNS = ("filepath", "path")


@dataclass
class CsvAdapter:
    """A CSV file of image paths and labels; relative paths resolve against --data-dir."""

    data_dir: Path
    file: str = field(default="", metadata={"help": "the CSV file (default: the one *.csv in --data-dir)"})
    path_column: str = field(default="", metadata={"help": "column of image paths (default: filepath or path)"})
    label_column: str = field(default="label", metadata={"help": "column of class names"})
    split_column: str = field(default="split", metadata={"help": "column of split names, if the file has one"})
    val_fraction: float | None = field(
        default=None,
        metadata={
            "help": "share of the train split (of all rows, with no split column) held out as 'val', stratified; "
            "refused beside a validation split (default: 0.2 where no split is named, else none)"
        },
    )
    seed: int = field(default=0, metadata={"help": "with --val-fraction: seed of the stratified split"})

    def read(self) -> Listing:
        import pandas as pd

        csv_path = self._csv_path()
        try:
            table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{csv_path}: not a readable CSV file ({exc})") from None
        path_column = self.path_column or next((c for c in PATH_COLUMNS if c in table.columns), "")
        for option, column in (("path-column", path_column), ("label-column", self.label_column)):
            if column not in table.columns:
                raise DataError(
                    f"{csv_path}: no column {column or '/'.join(PATH_COLUMNS)!r}; it has {', '.join(table.columns)}",
                    hint=f"name the column with --{option}",
                )
        has_split = self.split_column in table.columns
        problems, rows = [], []
        for index, (path, label, split) in enumerate(
            zip(
                table[path_column],
                table[self.label_column],
                table[self.split_column] if has_split else [""] * len(table),
            )
        ):
            where = f"{csv_path}:{index + 2}"  # line 1 is the header
            if not path.strip() or not label.strip():
                problems.append(Problem(where, f"empty {path_column if not path.strip() else self.label_column}"))
                continue
            if has_split and not split.strip():
                problems.append(Problem(where, f"empty {self.split_column}"))
                continue
            sample = Sample(path=self.data_dir / path.strip(), label=label.strip(), where=where)
            rows.append((split.strip(), sample))
        splits = _by_split(rows) if has_split else {"train": [s for _, s in rows]}
        train, evaluated = roles(splits)
        listing = Listing(root=self.data_dir, splits=splits, problems=problems, train_split=train, eval_split=evaluated)
        # Pooled rows are held out of by default; the publisher's splits only with a fraction given.
        fraction = self.val_fraction if self.val_fraction is not None else (0.0 if has_split else 0.2)
        return held_out(listing, fraction, self.seed)

    def _csv_path(self) -> Path:
        if self.file:
            path = self.data_dir / self.file  # an absolute path stays as it is
            if not path.is_file():
                raise DataError(f"CSV file {path} does not exist")
            return path
        found = sorted(self.data_dir.glob("*.csv"))
        if len(found) != 1:
            what = "no *.csv file" if not found else f"{len(found)} CSV files"
            raise DataError(f"{self.data_dir} has {what}", hint="name the file with --file")
        return found[0]


def _by_split(rows) -> dict[str, list[Sample]]:
    splits: dict[str, list[Sample]] = {}
    for split, sample in rows:
        splits.setdefault(split, []).append(sample)
    return splits
