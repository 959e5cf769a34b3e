"""Every reader of a file a user hands fgvctune, fed generated and mutated inputs (Hypothesis).

Each outcome must be a result or an FgvctuneError of one line: never another exception (a traceback at the CLI),
never more memory than a bound (`bounded_memory` caps the address space while the reader runs, so a reader that
believes a header claiming gigabytes fails here with MemoryError), and, for the readers that write, nothing
written, moved or deleted outside the output folder. The default profile runs a few hundred examples per reader,
the same ones every run (derandomized, so CI is repeatable); `.venv/bin/python -m pytest tests/data/test_fuzz.py
--hypothesis-profile=long` runs many more, drawn anew.
"""

from __future__ import annotations

import csv
import io
import json
import resource
import struct
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import make_aircraft, make_folder, write_archive, write_image
from fgvctune import config
from fgvctune.data.dataset import LabelMap, load_dataset
from fgvctune.data.tree import MANIFEST, convert
from fgvctune.errors import FgvctuneError
from fgvctune.weights import torchfile
from weightfiles import write_safetensors, write_torch_zip

HEADROOM = 1 << 30  # bytes of address space a reader may add to what the process already holds


@contextmanager
def bounded_memory(headroom: int = HEADROOM):
    """The process's address space capped at what it maps now plus `headroom` while the block runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = mapped + headroom if hard == resource.RLIM_INFINITY else min(mapped + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def outcome(read, *args, **kwargs):
    """`read(...)`'s result, or the FgvctuneError it raised (checked to be one line); anything else fails."""
    try:
        with bounded_memory():
            return read(*args, **kwargs)
    except FgvctuneError as exc:
        for text in (exc.message, exc.hint):
            assert "\n" not in text and "\r" not in text, f"a message of more than one line: {text[:300]!r}"
        return exc


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file and link under `root`: its bytes, or where it points."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[str(path)] = f"-> {path.readlink()}"
        elif path.is_file():
            files[str(path)] = path.read_bytes()
    return files


def mutated(base: bytes, data) -> bytes:
    """`base` with a few bytes flipped, a run inserted or deleted, or the end cut off."""
    out = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at : at + data.draw(st.integers(1, 16))]
        else:
            del out[at:]
    return bytes(out)


def scratch():
    return tempfile.TemporaryDirectory(prefix="fgvctune-fuzz-")


# -- weight files -----------------------------------------------------------------------------------------------
TENSORS = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "fc.bias": np.ones(3, np.float16)}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "abc", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 2**62) | st.sampled_from([0, 1, 2, 3, 2**31, 2**62]), max_size=4),
        "data_offsets": st.lists(st.integers(-1, 2**40) | st.integers(0, 64), max_size=3),
    }
)
headers = st.dictionaries(st.text(min_size=1, max_size=8), tensor_entries | json_values, max_size=4) | json_values


@given(header=headers, declared=st.none() | st.integers(0, 2**64 - 1), tail=st.binary(max_size=96))
@example(header={"w": {"dtype": "F32", "shape": [2**62], "data_offsets": [0, 0]}}, declared=None, tail=b"")
@example(header={"w": {"dtype": "abc", "shape": [1], "data_offsets": [0, 4]}}, declared=None, tail=b"\0" * 4)
@example(header=[1, 2], declared=None, tail=b"")
@example(header=None, declared=2**63, tail=b"{}")
def test_safetensors_headers_are_read_or_refused_in_one_line(header, declared, tail):
    text = "[" * 100_000 + "]" * 100_000 if header is None else json.dumps(header)
    raw = text.encode()
    with scratch() as tmp:
        path = Path(tmp) / "w.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + tail)
        outcome(torchfile.read, path)


@given(data=st.data())
def test_mutated_weight_files_are_read_or_refused_in_one_line(data):
    kind = data.draw(st.sampled_from(["w.safetensors", "w.pth", "pickle.pth"]))
    with scratch() as tmp:
        path = Path(tmp) / kind
        if kind == "w.safetensors":
            write_safetensors(path, TENSORS)
            path.write_bytes(mutated(path.read_bytes(), data))
        elif kind == "w.pth":
            write_torch_zip(path, TENSORS, container="state_dict", extra={"epoch": 3})
            path.write_bytes(mutated(path.read_bytes(), data))
        else:  # a sound zip around a damaged pickle
            write_torch_zip(path, TENSORS)
            with zipfile.ZipFile(path) as z:
                members = {name: z.read(name) for name in z.namelist()}
            members["archive/data.pkl"] = mutated(members["archive/data.pkl"], data)
            with zipfile.ZipFile(path, "w") as z:
                for name, body in members.items():
                    z.writestr(name, body)
        outcome(torchfile.read, path)


# -- the YAML config --------------------------------------------------------------------------------------------
config_keys = st.sampled_from(sorted(config.FIELDS) + ["no_such_key", "lr-mult"])
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=6,
)


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@given(
    text=st.dictionaries(config_keys, yaml_values, max_size=4).map(lambda d: yaml.safe_dump(d))
    | st.text(max_size=200)
    | st.sampled_from([billion_laughs(9), "lr: .nan\n", "lr: .inf\n", "scale: [a, b]\n", "seed: -1\n", "x: &a 1\n"]),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)
def test_config_files_are_read_or_refused_in_one_line(text, encoding):
    with scratch() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(text.encode(encoding, errors="replace"))
        outcome(config.resolve, path)


# -- a run's labels.csv -----------------------------------------------------------------------------------------
cells = st.text(max_size=6) | st.integers(-3, 5).map(str)


@given(
    header=st.sampled_from([["id", "name", "folder"], ["id", "label", "folder"], ["name"]])
    | st.lists(cells, max_size=4),
    rows=st.lists(st.lists(cells, max_size=4), max_size=6),
)
def test_label_maps_are_read_or_refused_in_one_line(header, rows):
    with scratch() as tmp:
        path = Path(tmp) / "labels.csv"
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header] + rows)
        path.write_text(buffer.getvalue(), encoding="utf-8")
        outcome(LabelMap.read, path)


# -- the class tree's manifest: nothing removed outside the output folder ---------------------------------------
def decoyed(tmp: Path) -> tuple[Path, Path, Path]:
    """A dataset, a decoy folder beside it, and the output folder's path, under `tmp`."""
    tree = make_folder(tmp / "tree", per_class=1)
    for name in ("keep.jpg", "train/cat/cat0.jpg"):
        write_image(tmp / "decoy" / name)
    return tree, tmp / "decoy", tmp / "out"


manifest_paths = st.sampled_from(
    ["train/cat/cat0.jpg", "train/cat/gone.jpg", "../decoy/keep.jpg", "../decoy/train/cat/cat0.jpg", "/DECOY/keep.jpg",
     "train/../../decoy/keep.jpg", "", ".", "train", "train/cat"]
)  # fmt: skip


@given(
    files=st.dictionaries(manifest_paths, st.sampled_from(["", "x.jpg", "/DECOY/keep.jpg"]), max_size=4) | json_values,
    mode=st.sampled_from(["copy", "move", "hardlink", "symlink", "nonsense"]) | json_values,
    complete=st.booleans(),
)
def test_a_crafted_manifest_never_touches_files_outside_the_output_folder(files, mode, complete):
    with scratch() as tmp:
        tmp = Path(tmp)
        tree, decoy, out = decoyed(tmp)
        if isinstance(files, dict):
            files = {k.replace("/DECOY", str(decoy)): v.replace("/DECOY", str(decoy)) if isinstance(v, str) else v
                     for k, v in files.items()}  # fmt: skip
        out.mkdir()
        (out / MANIFEST).write_text(
            json.dumps({"version": 1, "adapter": "folder", "mode": mode, "complete": complete, "files": files})
        )
        before = {**snapshot(decoy), **snapshot(tree)}
        outcome(convert, "folder", tree, out, mode="copy")
        assert {**snapshot(decoy), **snapshot(tree)} == before
        assert {p.name for p in tmp.iterdir()} == {"tree", "decoy", "out"}


# -- archives and shards: member names, and damaged containers --------------------------------------------------
name_parts = st.sampled_from(["train", "val", "cat", "dog", "..", ".", "", "/", "decoy", "a.jpg", "b.png", "c"])
member_names = st.lists(name_parts, min_size=1, max_size=5).map("/".join)


def tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = tiny_jpeg()


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile's, for the archives with a name twice
@given(
    names=st.lists(member_names, min_size=1, max_size=6),
    bodies=st.lists(st.sampled_from([JPEG, JPEG[:40], b"", b"not an image"]), min_size=6, max_size=6),
    suffix=st.sampled_from([".tar", ".zip"]),
    skip_bad=st.booleans(),
)
@example(names=["/decoy/x/a.jpg", "train/cat/a.jpg", "val/cat/a.jpg"], bodies=[JPEG] * 6, suffix=".tar", skip_bad=False)
@example(names=["../decoy/a.jpg", "train/cat/a.jpg", "val/cat/a.jpg"], bodies=[JPEG] * 6, suffix=".zip", skip_bad=True)
def test_archive_member_names_never_lead_a_conversion_outside_its_folder(names, bodies, suffix, skip_bad):
    with scratch() as tmp:
        tmp = Path(tmp)
        write_image(tmp / "decoy" / "keep.jpg")
        archive = write_archive(tmp / f"tree{suffix}", list(zip(names, bodies)))
        before = snapshot(tmp / "decoy")
        outcome(convert, "folder", archive, tmp / "out", skip_bad=skip_bad)
        assert snapshot(tmp / "decoy") == before
        assert {p.name for p in tmp.iterdir()} <= {"decoy", archive.name, "out"}


@given(data=st.data(), suffix=st.sampled_from([".tar", ".zip"]))
def test_damaged_archives_are_read_or_refused_in_one_line(data, suffix):
    with scratch() as tmp:
        tmp = Path(tmp)
        names = ["train/cat/a.jpg", "train/dog/b.jpg", "val/cat/c.jpg", "val/dog/d.jpg"]
        archive = write_archive(tmp / f"tree{suffix}", [(name, JPEG) for name in names])
        archive.write_bytes(mutated(archive.read_bytes(), data))
        outcome(load_dataset, "folder", archive, skip_bad=data.draw(st.booleans()))


# -- the adapters' own text formats -----------------------------------------------------------------------------
annotation_lines = st.lists(
    st.sampled_from(["0000101 707-320", "0000102 F/A-18", "9999999 707-320", "0000101", " ", "../x 707-320",
                     "0000101 No Such Class", "/etc/passwd 707-320"]) | st.text(max_size=12),
    max_size=6,
).map("\n".join)  # fmt: skip


@given(
    which=st.sampled_from(["images_variant_trainval.txt", "images_variant_test.txt", "variants.txt", "images_box.txt"]),
    text=annotation_lines,
    crop_box=st.booleans(),
    skip_bad=st.booleans(),
)
def test_aircraft_annotations_are_read_or_refused_in_one_line(which, text, crop_box, skip_bad):
    with scratch() as tmp:
        root = make_aircraft(Path(tmp) / "fgvc", per_split=1)
        (root / "data" / which).write_text(text, encoding="utf-8")
        outcome(load_dataset, "aircraft", root, options={"crop_box": crop_box}, skip_bad=skip_bad)


csv_paths = st.sampled_from(["a.png", "b.png", "missing.png", "../decoy/keep.png", "/DECOY/keep.png", "link.png", ""])


@given(
    rows=st.lists(st.tuples(csv_paths, st.sampled_from(["cat", "dog", "", " "]), st.sampled_from(["train", "val", ""])),
                  max_size=8),
    header=st.sampled_from([("filepath", "label", "split"), ("path", "label"), ("file", "class", "split")]),
    skip_bad=st.booleans(),
)  # fmt: skip
def test_csv_rows_never_read_outside_the_dataset_folder(rows, header, skip_bad):
    with scratch() as tmp:
        tmp = Path(tmp)
        decoy = write_image(tmp / "decoy" / "keep.png", (1, 2, 3))
        root = tmp / "data"
        for name in ("a.png", "b.png"):
            write_image(root / name)
        (root / "link.png").symlink_to(decoy)
        with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for path, label, split in rows:
                writer.writerow([path.replace("/DECOY", str(tmp / "decoy")), label, split][: len(header)])
        result = outcome(load_dataset, "csv", root, skip_bad=skip_bad)
        if not isinstance(result, FgvctuneError):
            read = {Path(s.path).resolve() for samples in result.splits.values() for s in samples}
            assert all(path.is_relative_to(root.resolve()) for path in read), read


@given(data=st.data(), label_key=st.sampled_from(["cls", "txt", "json:label"]))
def test_webdataset_shards_are_read_or_refused_in_one_line(data, label_key):
    with scratch() as tmp:
        root = Path(tmp) / "shards"
        root.mkdir()
        keys = data.draw(st.lists(member_names.map(lambda n: n.rsplit(".", 1)[0] or "k"), min_size=1, max_size=4))
        members = []
        for i, key in enumerate(keys):
            members.append((f"{key}.jpg", JPEG))
            members.append((f"{key}.cls", data.draw(st.sampled_from([b"0", b"1", b"-1", b"x", b""]))))
            members.append((f"{key}.txt", data.draw(st.sampled_from([b"cat", b"dog", b"", b"\xff"]))))
            members.append((f"{key}.json", data.draw(st.sampled_from([b'{"label": "cat"}', b"[1]", b"{", b"7"]))))
        shard = write_archive(root / "train-000000.tar", members)
        write_archive(root / "val-000000.tar", [("v.jpg", JPEG), ("v.cls", b"0"), ("v.txt", b"cat"),
                                                 ("v.json", b'{"label": "cat"}')])  # fmt: skip
        if data.draw(st.booleans()):
            shard.write_bytes(mutated(shard.read_bytes(), data))
        (root / "classes.txt").write_text("cat\ndog\n", encoding="utf-8")
        options = {"label_key": label_key, "classes": "classes.txt" if label_key == "cls" else ""}
        outcome(load_dataset, "wds", root, options=options, skip_bad=data.draw(st.booleans()))


def test_the_memory_bound_stops_a_reader_that_believes_a_header():
    """The harness's own check: a reader allocating what a header claims fails under `bounded_memory`."""
    with pytest.raises(MemoryError):
        with bounded_memory():
            np.ones(2 * HEADROOM // 8)


# -- Hugging Face folders: metadata files, save_to_disk's JSON, the dataset card --------------------------------
@given(
    lines=st.lists(json_values.map(json.dumps) | st.text(max_size=20) | st.sampled_from(
        ['{"file_name": "a.jpg", "label": "cat"}', '{"file_name": "../decoy/keep.jpg", "label": "cat"}',
         '{"file_name": "/DECOY/keep.jpg", "label": "dog"}', '{"file_name": 7, "label": [1]}', "[" * 5000]),
        max_size=5),
    name=st.sampled_from(["metadata.jsonl", "metadata.csv"]),
)  # fmt: skip
def test_imagefolder_metadata_is_read_or_refused_in_one_line(lines, name):
    with scratch() as tmp:
        tmp = Path(tmp)
        write_image(tmp / "decoy" / "keep.jpg")
        root = tmp / "data"
        write_image(root / "train" / "a.jpg")
        text = "\n".join(line.replace("/DECOY", str(tmp / "decoy")) for line in lines)
        (root / "train" / name).write_text("file_name,label\n" + text if name.endswith(".csv") else text)
        result = outcome(load_dataset, "hf", root, strict=False)
        if not isinstance(result, FgvctuneError):
            read = {Path(s.path).resolve() for samples in result.splits.values() for s in samples}
            assert all(path.is_relative_to(root.resolve()) for path in read), read


@given(
    dataset_dict=json_values | st.fixed_dictionaries({"splits": st.lists(st.sampled_from(["train", "..", "/", ""]))}),
    state=json_values
    | st.fixed_dictionaries(
        {"_data_files": st.lists(st.fixed_dictionaries({"filename": st.sampled_from(["data.arrow", "../x", "/"])}))}
    ),
)
def test_save_to_disk_json_is_read_or_refused_in_one_line(dataset_dict, state):
    with scratch() as tmp:
        root = Path(tmp) / "saved"
        (root / "train").mkdir(parents=True)
        (root / "dataset_dict.json").write_text(json.dumps(dataset_dict))
        (root / "train" / "state.json").write_text(json.dumps(state))
        (root / "train" / "data.arrow").write_bytes(b"not arrow")
        outcome(load_dataset, "hf", root, strict=False)


@given(card=st.dictionaries(st.sampled_from(["dataset_info", "configs", "x"]), yaml_values).map(yaml.safe_dump)
       | st.text(max_size=60) | st.sampled_from([billion_laughs(9), "dataset_info: &a [*a]"]),
       encoding=st.sampled_from(["utf-8", "latin-1"]))  # fmt: skip
def test_dataset_cards_are_read_or_refused_in_one_line(card, encoding):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with scratch() as tmp:
        root = Path(tmp) / "hub"
        (root / "data").mkdir(parents=True)
        cell = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        table = pa.table({"image": pa.array([{"bytes": JPEG, "path": "a.jpg"}] * 2, cell), "label": pa.array([0, 1])})
        pq.write_table(table, root / "data" / "train-00000-of-00001.parquet")
        (root / "README.md").write_bytes(f"---\n{card}\n---\n# card\n".encode(encoding, errors="replace"))
        outcome(load_dataset, "hf", root, strict=False, check_images=False)
