"""A Hub dataset id as --data-dir (fgvctune.data.hub): huggingface_hub itself builds its real cache, downloading
from a small local imitation of the Hub's HTTP API that serves Parquet shards and a dataset card the real
`datasets` wrote; fgvctune then reads the id from that cache with HF_HUB_OFFLINE=1, the server gone."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import FAST, REPO, fgvctune, free_port, write_image
from fgvctune.data.dataset import folder_name

REPO_ID = "someone/aircraft"
COLOURS = {"airbus": (200, 30, 30), "boeing": (30, 200, 30), "cessna": (30, 30, 200)}
# Each subset's images per class and split; `v1`, an older commit, has only the default subset, smaller.
SIZES = {"default": {"train": 6, "test": 3}, "small": {"train": 4, "test": 2}}
OLD_SIZES = {"default": {"train": 4, "test": 2}}


def shards(sizes: dict, with_configs: bool = True) -> dict[str, bytes]:
    """The Hub's files for `sizes`: `data/{split}-00000-of-00001.parquet` for the default subset,
    `{subset}/{split}-...` for the others (as `push_to_hub(config_name=...)` writes them) and the dataset card with
    its `configs:`, all written by `datasets` itself."""
    import datasets
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    classes = list(COLOURS)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})
    files, configs = {}, {}
    for subset, per_class in sizes.items():
        folder = "data" if subset == "default" else subset
        for split, count in per_class.items():
            images, labels = [], []
            for label, colour in enumerate(COLOURS.values()):
                for i in range(count):
                    image = write_image(io.BytesIO(), (colour[0], colour[1], 20 * i), fmt="PNG").getvalue()
                    images.append({"bytes": image, "path": f"{classes[label]}{i}.png"})
                    labels.append(label)
            buf = io.BytesIO()
            datasets.Dataset.from_dict({"image": images, "label": labels}, features=features).to_parquet(buf)
            files[f"{folder}/{split}-00000-of-00001.parquet"] = buf.getvalue()
        configs[subset] = {"data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in per_class]}
    card = DatasetCardData()
    MetadataConfigs(configs).to_dataset_card_data(card)
    files["README.md"] = f"---\n{card.to_yaml()}\n---\n# Aircraft\n".encode() if with_configs else b"# Aircraft\n"
    files[".gitattributes"] = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    return files


def commit(files: dict[str, bytes]) -> str:
    return hashlib.sha1(b"".join(p.encode() + hashlib.sha1(b).digest() for p, b in sorted(files.items()))).hexdigest()


class FakeHub(ThreadingHTTPServer):
    """The endpoints huggingface_hub's downloads call, for one dataset repo: repo info by revision, its recursive
    tree, and `resolve` (HEAD for the commit, ETag and size, GET for the bytes); the Hub's X-Error-Code on 404s."""

    def __init__(self, repo_id: str, commits: dict[str, dict[str, bytes]], refs: dict[str, str]):
        super().__init__(("127.0.0.1", free_port()), Handler)
        self.repo_id, self.commits, self.refs = repo_id, commits, refs
        self.requests: list[tuple[str, str]] = []  # (method, path) in order

    def files(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | str:
        """(commit, files), or the Hub's error code."""
        if repo != self.repo_id:
            return "RepoNotFound"
        sha = self.refs.get(revision, revision)
        return (sha, self.commits[sha]) if sha in self.commits else "RevisionNotFound"


class Handler(BaseHTTPRequestHandler):
    server: FakeHub
    API = re.compile(r"^/api/datasets/(?P<repo>.+?)/(?P<kind>revision|tree)/(?P<rev>[^/?]+)")
    RESOLVE = re.compile(r"^/datasets/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<path>[^?]+)")

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body: bool):
        self.server.requests.append((self.command, unquote(self.path.split("?")[0])))
        api, resolve = self.API.match(self.path), self.RESOLVE.match(self.path)
        match = api or resolve
        if not match:
            return self.reply(404, b"", {"X-Error-Code": "RepoNotFound"}, body)
        found = self.server.files(unquote(match["repo"]), unquote(match["rev"]))
        if isinstance(found, str):
            return self.reply(404, found.encode(), {"X-Error-Code": found}, body)
        sha, files = found
        if api and api["kind"] == "revision":
            info = {
                "id": self.server.repo_id,
                "sha": sha,
                "private": False,
                "siblings": [{"rfilename": p} for p in files],
            }
            return self.reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        if api:
            tree = [
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in files.items()
            ]
            return self.reply(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
        path = unquote(resolve["path"])
        if path not in files:
            return self.reply(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha}, body)
        data = files[path]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        self.reply(200, data, {"X-Repo-Commit": sha, "ETag": etag, "X-Linked-Etag": etag}, body)

    def reply(self, status: int, data: bytes, headers: dict, body: bool):
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


@pytest.fixture(scope="module")
def published() -> dict:
    """The repo's two commits: `main` (both subsets) and the tag `v1` (an older, smaller default subset)."""
    new, old = shards(SIZES), shards(OLD_SIZES)
    return {"commits": {commit(new): new, commit(old): old}, "refs": {"main": commit(new), "v1": commit(old)}}


@contextmanager
def serving(published: dict):
    """The imitation Hub on a free port, stopped on leaving (what was downloaded stays in the cache)."""
    hub = FakeHub(REPO_ID, published["commits"], published["refs"])
    thread = threading.Thread(target=hub.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.shutdown()
        hub.server_close()


def environment(tmp_path: Path, hub: FakeHub | None = None) -> dict:
    """A child's environment: huggingface_hub's cache and home in tmp_path (no token of the machine's), the
    imitation Hub as its endpoint when `hub` is given, else offline (HF_HUB_OFFLINE=1, a port nothing serves)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hf-cache"), HF_HOME=str(tmp_path / "hf-home"))
    env.update(HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="5")
    if hub:
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{hub.server_address[1]}")
    else:
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HUB_OFFLINE="1")
    return env


CHILD = """
import json, sys
{block}
from fgvctune.data.hub import dataset_folder
from fgvctune.errors import FgvctuneError
try:
    print(json.dumps({{"folder": str(dataset_folder(*sys.argv[1:]))}}))
except FgvctuneError as error:
    print(json.dumps({{"error": error.message, "hint": error.hint, "type": type(error).__name__}}))
"""
# Python without huggingface_hub, as where the `hub` extra is not installed: its import fails.
NO_HUB = "sys.modules['huggingface_hub'] = None"


def resolve(env: dict, name: str = REPO_ID, revision: str = "", subset: str = "", block: str = "") -> dict:
    """dataset_folder(name, revision, subset) in a child with `env` (huggingface_hub reads it on import):
    {"folder": ...} or the one-line error {"error", "hint", "type"}."""
    code = CHILD.format(block=block)
    done = subprocess.run(
        [sys.executable, "-c", code, name, revision, subset], capture_output=True, text=True, cwd=REPO, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def fetched(hub: FakeHub) -> set[str]:
    """The repo files whose bytes were downloaded."""
    return {
        path.split("/resolve/", 1)[1].split("/", 1)[1]
        for method, path in hub.requests
        if method == "GET" and "/resolve/" in path
    }


def loaded(folder: Path, subset: str = "default") -> dict[str, Counter]:
    """The oracle: split -> Counter of class names, as `datasets.load_dataset` reads the snapshot folder."""
    import datasets

    data = datasets.load_dataset(str(folder), subset, cache_dir=str(folder.parents[3] / "datasets-cache"))
    return {
        split: Counter(table.features["label"].int2str(label) for label in table["label"])
        for split, table in data.items()
    }


# -- by id, online then offline -------------------------------------------------------------------------
def test_a_subset_is_fetched_alone_into_the_real_cache(published, tmp_path):
    """Downloaded: the card and exactly the files `datasets` resolves for the chosen subset (on a full copy of the
    repo), into a cache huggingface_hub itself scans."""
    import datasets
    from huggingface_hub import scan_cache_dir

    full = tmp_path / "full"
    for path, data in published["commits"][published["refs"]["main"]].items():
        (full / path).parent.mkdir(parents=True, exist_ok=True)
        (full / path).write_bytes(data)
    config = datasets.load_dataset_builder(str(full), "small", cache_dir=str(tmp_path / "datasets-cache")).config
    needed = {Path(f).relative_to(full).as_posix() for files in config.data_files.values() for f in files}
    with serving(published) as hub:
        found = resolve(environment(tmp_path, hub), subset="small")
    assert fetched(hub) == {"README.md"} | needed
    repos = scan_cache_dir(tmp_path / "hf-cache").repos
    assert [(r.repo_id, r.repo_type) for r in repos] == [(REPO_ID, "dataset")]
    assert Path(found["folder"]) == next(iter(next(iter(repos)).revisions)).snapshot_path


def test_a_revision_is_read_at_its_commit(published, tmp_path):
    with serving(published) as hub:
        found = resolve(environment(tmp_path, hub), revision="v1")
    assert Path(found["folder"]).name == published["refs"]["v1"]
    assert loaded(Path(found["folder"])) == {
        s: Counter(dict.fromkeys(COLOURS, n)) for s, n in OLD_SIZES["default"].items()
    }


@pytest.mark.e2e
def test_info_convert_and_train_read_a_cached_id_offline(published, tmp_path, cache):
    """Online, `info` by id downloads the default subset; then, the Hub gone and HF_HUB_OFFLINE=1, `info`,
    `convert` and `train` read the same id from the cache, with what `datasets` loads from it."""
    with serving(published) as hub:
        online = fgvctune("info", "-a", "hf", "-d", REPO_ID, "--no-duplicates", log=tmp_path / "online.log",
                          env=environment(tmp_path, hub))  # fmt: skip
    assert online.returncode == 0, online.stdout[-3000:]
    assert fetched(hub) == {"README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}
    offline = environment(tmp_path)
    shown = fgvctune("info", "-a", "hf", "-d", REPO_ID, "--no-duplicates", log=tmp_path / "info.log", env=offline)
    assert shown.returncode == 0, shown.stdout[-3000:]
    snapshot = next((tmp_path / "hf-cache").glob("datasets--someone--aircraft/snapshots/*"))
    oracle = loaded(snapshot)
    assert f"hf dataset at {snapshot}: {len(COLOURS)} classes" in shown.stdout
    for split, counts in oracle.items():
        line = rf"^  {split} \(\w+\): {sum(counts.values())} images, {len(counts)} classes"
        assert re.search(line, shown.stdout, re.M)

    out = tmp_path / "tree"
    converted = fgvctune("convert", "-a", "hf", "-d", REPO_ID, "-o", str(out), log=tmp_path / "c.log", env=offline)
    assert converted.returncode == 0, converted.stdout[-3000:]
    tree = {
        split.name: Counter({c.name: len(list(c.iterdir())) for c in split.iterdir() if c.is_dir()})
        for split in out.iterdir()
        if split.is_dir()
    }
    assert tree == {s: Counter({folder_name(k): n for k, n in c.items()}) for s, c in oracle.items()}

    run = tmp_path / "run"
    trained = fgvctune(
        "train", "-a", "hf", "-d", REPO_ID, "--no-pretrained", "--epoch-size", "1", "--image-resize",
        str(FAST["image_resize"]), "--batch-size", "16", "--cache-dir", cache, "-o", str(run),
        log=tmp_path / "train.log", env=offline,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:]
    assert f"{sum(oracle['train'].values())} train / {sum(oracle['test'].values())} test images" in trained.stdout


# -- one line each for what cannot be read ----------------------------------------------------------------
def test_an_id_offline_and_not_cached_is_one_line(tmp_path):
    found = resolve(environment(tmp_path))
    assert found["error"].startswith(f"Hub dataset {REPO_ID}: it is not in the Hugging Face cache")
    assert "HF_HUB_OFFLINE is set" in found["error"]
    assert found["hint"] == f"go online, or download it first: hf download {REPO_ID} --repo-type dataset"


def test_the_cli_says_offline_and_not_cached_in_one_line(tmp_path):
    shown = fgvctune("info", "-a", "hf", "-d", REPO_ID, log=tmp_path / "info.log", env=environment(tmp_path))
    assert shown.returncode == 1 and "Traceback" not in shown.stdout
    assert "it is not in the Hugging Face cache" in shown.stdout and "hf download" in shown.stdout


def test_a_subset_not_cached_is_one_line_offline(published, tmp_path):
    """The cache holds one subset; asked offline for another, huggingface_hub's tree listing tells it is missing."""
    with serving(published) as hub:
        assert "folder" in resolve(environment(tmp_path, hub), subset="small")
    found = resolve(environment(tmp_path))  # the default subset
    assert found["error"].startswith(f"Hub dataset {REPO_ID}: only part of it is in the Hugging Face cache")


def test_an_unknown_revision_repo_or_subset_is_one_line(published, tmp_path):
    with serving(published) as hub:
        env = environment(tmp_path, hub)
        revision = resolve(env, revision="v9")
        repo = resolve(env, name="someone/nothing")
        subset = resolve(env, subset="huge")
        default = resolve(env, name=REPO_ID)  # two subsets, one named `default`: that one
    assert revision["error"] == f"Hub dataset {REPO_ID} has no revision 'v9'"
    assert repo["error"] == "data directory someone/nothing does not exist, and the Hugging Face Hub has no dataset " \
        "'someone/nothing'"  # fmt: skip
    assert subset["error"] == f"Hub dataset {REPO_ID} has no subset 'huge'; its subsets: default, small"
    assert subset["type"] == "UsageError" and "folder" in default


def test_a_name_that_is_no_hub_id_does_not_exist(tmp_path):
    """A path that cannot be a Hub id is a missing folder, as before: no import, no request."""
    for name in ("./nowhere", "/data/nowhere", "a/b/c", "double--dash", "x" * 97):
        found = resolve(environment(tmp_path), name=name, block=NO_HUB)
        assert found == {"error": f"data directory {name} does not exist", "hint": "pass --data-dir with the "
                         "dataset's folder", "type": "DataError"}  # fmt: skip


def test_without_huggingface_hub_the_extra_is_named(tmp_path):
    found = resolve(environment(tmp_path), block=NO_HUB)
    assert "needs huggingface_hub" in found["error"] and found["hint"].endswith("pip install 'fgvctune[hub]'")
    code = f"import sys\n{NO_HUB}\nsys.argv = ['fgvctune', 'info', '-a', 'hf', '-d', {REPO_ID!r}]\n"
    code += "from fgvctune.cli import main\nmain()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "fgvctune[hub]" in done.stderr + done.stdout


CARDS = {
    "one config": [{"config_name": "only", "data_files": "x/*.parquet"}],
    "named default": [{"config_name": "a", "data_files": "a/*"}, {"config_name": "default", "data_files": ["d/*"]}],
    "marked default": [
        {"config_name": "a", "data_dir": "a", "data_files": [{"split": "train", "path": ["tr/*", "more/*"]}]},
        {"config_name": "b", "data_files": "b/*", "default": True},
    ],
    "no default": [{"config_name": "a", "data_files": "a/*"}, {"config_name": "b", "data_files": "b/*"}],
}


@pytest.mark.parametrize("name", CARDS)
def test_the_subset_chosen_is_the_one_datasets_chooses(name):
    """Without --subset, the config `datasets` takes as the default (or its refusal when there is none), and its
    data_files under its data_dir; --subset names any of them."""
    import yaml
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    from fgvctune.data.hub import subset_patterns
    from fgvctune.errors import UsageError

    card = f"---\n{yaml.safe_dump({'configs': CARDS[name]})}---\n"
    configs = MetadataConfigs.from_dataset_card_data(DatasetCardData(configs=CARDS[name]))

    def paths(config):
        files = configs[config]["data_files"]
        entries = [e["path"] if isinstance(e, dict) else e for e in (files if isinstance(files, list) else [files])]
        flat = [p for e in entries for p in (e if isinstance(e, list) else [e])]
        return [f"{configs[config]['data_dir']}/{p}" if configs[config].get("data_dir") else p for p in flat]

    default = configs.get_default_config_name()
    if default is None:
        with pytest.raises(UsageError, match="holds several subsets"):
            subset_patterns(card, "", "x")
    else:
        assert subset_patterns(card, "", "x") == paths(default)
    for config in configs:
        assert subset_patterns(card, config, "x") == paths(config)
