"""Streams written to disk: one Arrow IPC stream file per batch plus a manifest, for fixed validation sets,
debugging and exact replay without workers.

``manifest.json`` records the prior and its config, the stream config, the rank, the schema version, the
stream's fingerprint (``pfnforge.stream.provenance``) and a SHA-256 per file. Writing is resumable: files
already written and intact are kept. Reading checks the schema version (refusing another one, naming both)
and every file's checksum (naming a corrupt file); a malformed manifest or a listed file that is missing or
not a file is a ``SchemaError`` naming the path and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pfnforge.arrow import SCHEMA_VERSION
from pfnforge.errors import ConfigError, SchemaError
from pfnforge.prior import Prior
from pfnforge.stream.pool import Task, WorkerPool
from pfnforge.stream.provenance import StreamFingerprint, stream_fingerprint
from pfnforge.stream.sources import BatchSource
from pfnforge.stream.spec import StreamConfig, from_ipc_bytes

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes | pa.Buffer) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _part_manifest(part: tuple[int, int]) -> str:
    return f"manifest.part-{part[0]:04d}-of-{part[1]:04d}.json"


def write_shards(prior: Prior, prior_config: dict, config: StreamConfig, out: Path, num_batches: int, *,
                 rank: int = 0, num_workers: int | None = None, part: tuple[int, int] | None = None,
                 progress: bool = True) -> Path:
    """Write batches ``0 .. num_batches - 1`` of ``rank`` to ``out``; resumes an interrupted run.

    ``part=(i, n)`` writes only the i-th of n equal slices, with its own manifest, so that n writers (a Slurm
    array) fill one directory at once; the same call without ``part`` then verifies every slice's files,
    writes what is missing and the one ``manifest.json`` readers need. ``progress``: a progress bar on stderr."""
    if num_batches < 1:
        raise ConfigError(f"num_batches={num_batches} must be >= 1")
    if part is not None and not 0 <= part[0] < part[1]:
        raise ConfigError(f"part={part[0]}/{part[1]}: expected I/N with 0 <= I < N (e.g. a Slurm array task)")
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = stream_fingerprint(prior, seed=config.seed, ranks=range(rank, rank + 1))
    manifest = {"format": "pfnforge-shards", "schema_version": SCHEMA_VERSION, "prior": prior.name,
                "prior_config": prior_config, "stream": config.key(), "rank": rank, "num_batches": num_batches,
                "fingerprint": fingerprint.to_json(), "files": {}}
    manifest_name = MANIFEST if part is None else _part_manifest(part)
    previous = [out / manifest_name] if part else [out / MANIFEST, *sorted(out.glob("manifest.part-*.json"))]
    for path in (p for p in previous if p.exists()):
        existing = _read_manifest(path)
        keys = ("schema_version", "prior", "prior_config", "stream", "rank")
        recorded = existing.get("fingerprint")  # absent in directories written before fingerprints
        config_hash = recorded.get("config_hash") if isinstance(recorded, dict) else fingerprint.config_hash
        if any(existing.get(key) != manifest[key] for key in keys) or config_hash != fingerprint.config_hash:
            raise ConfigError(f"{out} holds shards of another prior, config or stream: choose an empty directory")
        manifest["files"].update({k: entry for k, entry in existing["files"].items() if int(k) < num_batches and
                                  (out / entry["file"]).is_file() and _sha256(out / entry["file"]) == entry["sha256"]})
    wanted = range(num_batches) if part is None else range(part[0] * num_batches // part[1],
                                                             (part[0] + 1) * num_batches // part[1])
    missing = [k for k in wanted if str(k) not in manifest["files"]]
    saved = time.perf_counter()
    key = config.key()
    bar = tqdm(total=len(wanted), initial=len(wanted) - len(missing), unit="batches", disable=not progress,
               file=sys.stderr, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}, {rate_fmt}]")
    with WorkerPool(prior, num_workers) as pool, bar:
        window = 2 * pool.num_workers
        for k in missing[:window]:
            pool.submit(Task(key, rank, k))
        for index, k in enumerate(missing):
            if index + window < len(missing):
                pool.submit(Task(key, rank, missing[index + window]))
            payload = pool.take_payload(Task(key, rank, k))
            name = f"batch-r{rank:04d}-{k:08d}.arrows"
            _write_atomic(out / name, payload)
            manifest["files"][str(k)] = {"file": name, "sha256": hashlib.sha256(payload).hexdigest(),
                                         "bytes": payload.size}
            if time.perf_counter() - saved > 1.0:  # a killed writer redoes at most ~1 s of batches
                _write_atomic(out / manifest_name, json.dumps(manifest, indent=1).encode())
                saved = time.perf_counter()
            bar.update()
    _write_atomic(out / manifest_name, json.dumps(manifest, indent=1).encode())
    if part is None:  # the slices are in manifest.json now
        for path in out.glob("manifest.part-*.json"):
            path.unlink()
    return out


def _read_manifest(path: Path) -> dict:
    """A manifest with the keys readers and writers use; a ``SchemaError`` naming it and the fix otherwise."""
    try:
        manifest = json.loads(path.read_text())
    except OSError as error:
        raise SchemaError(f"{path} is missing or unreadable ({error}): is {path.parent} a shard directory "
                          "written by `pfnforge generate`?") from error
    except ValueError as error:
        problem = f"is not JSON ({error})"
    else:
        problem = _manifest_problem(manifest)
    if problem:
        raise SchemaError(f"{path} {problem}: delete it and run the `pfnforge generate` command that wrote "
                          f"{path.parent} again")
    return manifest


def _manifest_problem(manifest: object) -> str | None:
    if not isinstance(manifest, dict):
        return "is not a JSON object"
    missing = [key for key in ("stream", "rank", "num_batches", "files") if key not in manifest]
    if missing:
        return f"lacks {', '.join(missing)}"
    files = manifest["files"]
    if not isinstance(files, dict) or not all(
            k.isdigit() and isinstance(entry, dict) and {"file", "sha256"} <= entry.keys()
            for k, entry in files.items()):
        return "lists its files in a form `pfnforge generate` does not write"
    return None


class ShardSource(BatchSource):
    """The batches of a shard directory, in order, verified; ends after the last batch."""

    def __init__(self, directory: str | Path, start: int = 0) -> None:
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        self.manifest = _read_manifest(path)
        version = self.manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaError(f"{directory} holds shards of pfnforge batch schema version {version}, this "
                              f"pfnforge reads version {SCHEMA_VERSION}: regenerate them")
        try:
            config, rank = StreamConfig.from_key(self.manifest["stream"]), int(self.manifest["rank"])
            self.num_batches = int(self.manifest["num_batches"])
        except (KeyError, TypeError, ValueError) as error:
            raise SchemaError(f"{path} holds a malformed stream or rank ({type(error).__name__}: {error}): delete it "
                              f"and run the `pfnforge generate` command that wrote {directory} again") from error
        super().__init__(config, rank, start)
        found = self.manifest.get("fingerprint")
        self.fingerprint = None if found is None else StreamFingerprint.from_json(found, str(path))
        """What the shards hold; ``None`` for a directory written before manifests recorded it."""

    def __len__(self) -> int:
        return self.num_batches

    def _fetch(self, k: int) -> pa.RecordBatch:
        if k >= self.num_batches:
            raise StopIteration
        entry = self.manifest["files"].get(str(k))
        if entry is None:
            raise SchemaError(f"{self.directory} has no batch {k}: the writer was interrupted; run the same "
                              "`pfnforge generate` command again to finish it")
        path = self.directory / entry["file"]
        if path.is_dir():
            raise SchemaError(f"{path} is a directory where the manifest lists batch {k}'s file: remove it and "
                              "run the same `pfnforge generate` command again to rewrite the batch")
        try:
            with pa.memory_map(str(path), "r") as mapped:
                payload = mapped.read_buffer()
        except OSError as error:
            raise SchemaError(f"{path}, batch {k} of {self.directory / MANIFEST}, cannot be read ({error}): run the "
                              "same `pfnforge generate` command again to rewrite it") from error
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise SchemaError(f"{path} is corrupt (its SHA-256 differs from the manifest's): delete it and run "
                              "`pfnforge generate` again to rewrite it")
        return from_ipc_bytes(payload, str(path))
