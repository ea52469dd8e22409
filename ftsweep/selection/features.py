"""A Parquet cache of features extracted from a frozen backbone, and the feature layer to use.

The selection methods need one feature vector per image of the pre-training and the target
training sets (Sec. 4.1: 512-dim penultimate ResNet18 features, 128-dim MoCo-v2 features),
extracted with :func:`ftsweep.engine.extract_features`. Extraction is the expensive step, so :func:`cached_features` stores ``(ids, labels, features)``
in one Parquet file per cache key (backbone checkpoint digest, dataset and split, transform,
feature layer); the key's SHA-256 names the file and the key itself is kept in the Parquet
metadata. :func:`resolve_feature_layer` picks the layer: the projection output for MoCo
checkpoints, the penultimate (pooled backbone) features otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsweep.backbones import PROJECTION_FORMATS
from ftsweep.cache import build_once
from ftsweep.engine.loop import extract_features  # noqa: F401  (re-export until its callers import ftsweep.engine)

__all__ = [
    "FEATURE_LAYERS",
    "cache_path",
    "cached_features",
    "checkpoint_digest",
    "extract_features",
    "resolve_feature_layer",
]

#: ``auto`` = :func:`resolve_feature_layer`'s choice; ``penultimate`` = the pooled backbone
#: output; ``projection`` = the pre-training projection head applied to it
FEATURE_LAYERS = ("auto", "penultimate", "projection")

_KEY_META = b"ftsweep.selection.key"
_FORMAT_META = b"ftsweep.selection.format"
_FORMAT = b"1"
_READ_CHUNK = 1 << 20


def resolve_feature_layer(layer: str, checkpoint_format: str | None) -> str:
    """The layer whose output represents an image for selection (Sec. 4.1).

    The paper uses "512-dim features from the penultimate layer" of the supervised ResNet-18 and
    "128-dim features from the final FC layer" (the projection head) of MoCo-v2, so ``auto`` is
    ``projection`` for checkpoints in a format with a projection head
    (``ftsweep.backbones.PROJECTION_FORMATS``: MoCo) and ``penultimate`` otherwise.

    Args:
        layer: one of :data:`FEATURE_LAYERS`.
        checkpoint_format: the resolved format of the pre-trained checkpoint (not ``"auto"``),
            or ``None`` for a randomly initialised backbone.

    Returns:
        ``"penultimate"`` or ``"projection"``.
    """
    if layer not in FEATURE_LAYERS:
        raise ValueError(f"feature layer must be one of {', '.join(FEATURE_LAYERS)}, got {layer!r}")
    if layer != "auto":
        return layer
    return "projection" if checkpoint_format in PROJECTION_FORMATS else "penultimate"


def checkpoint_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file (e.g. a backbone checkpoint), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_key(key: Mapping[str, Any]) -> str:
    if not isinstance(key, Mapping) or not key:
        raise ValueError(f"key must be a non-empty dict, got {key!r}")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"key must be JSON-serialisable: {err}") from err


def cache_path(cache_dir: str | os.PathLike[str], key: Mapping[str, Any]) -> Path:
    """Path of the Parquet file for a key: ``<cache_dir>/features-<sha256(key)[:24]>.parquet``."""
    name = hashlib.sha256(_canonical_key(key).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"features-{name}.parquet"


def _to_table(ids: np.ndarray, features: np.ndarray, labels: np.ndarray, key_json: str) -> pa.Table:
    n, dim = features.shape
    flat = pa.array(np.ascontiguousarray(features).reshape(-1))
    table = pa.table(
        {
            "id": pa.array(ids),
            "label": pa.array(labels),
            "features": pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    )
    return table.replace_schema_metadata({_KEY_META: key_json.encode(), _FORMAT_META: _FORMAT})


def _from_table(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    column = table.column("features").combine_chunks()
    dim = column.type.list_size
    values = column.values.to_numpy(zero_copy_only=False)
    features = values.reshape(len(column), dim)
    ids = table.column("id").to_numpy()
    labels = table.column("label").to_numpy()
    return ids, features, labels


def _check_computed(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (isinstance(result, tuple) and len(result) == 3):
        raise ValueError("compute must return a tuple (ids, features, labels)")
    ids, features, labels = (np.asarray(x) for x in result)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise ValueError(
            f"features must be a float array with shape (N, D), got {features.dtype} {features.shape}"
        )
    n = features.shape[0]
    if ids.shape != (n,) or labels.shape != (n,):
        raise ValueError(f"ids and labels must have shape ({n},), got {ids.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    return ids, features, labels


def _read_cached(path: Path, key_json: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays at ``path`` if the file holds ``key_json`` in the current format."""
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if meta.get(_KEY_META) == key_json.encode() and meta.get(_FORMAT_META) == _FORMAT:
        return _from_table(table)
    return None


def cached_features(
    cache_dir: str | os.PathLike[str],
    key: Mapping[str, Any],
    compute: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load ``(ids, features, labels)`` from the Parquet cache, computing and storing on a miss.

    Args:
        cache_dir: Directory of the cache (created if missing).
        key: JSON-serialisable dict identifying the features, e.g.
            ``{"checkpoint_sha256": checkpoint_digest(ckpt), "dataset": "cub", "split": "train",
            "transform": "resize256-center224-imagenet-norm"}``. Its SHA-256 names the file and
            it is stored in the file's metadata; a stored key that differs is a miss.
        compute: Called on a miss; returns ``ids`` with shape (N,) (integers or strings),
            ``features`` with shape (N, D) (float32 or float64) and integer ``labels`` with
            shape (N,).

    Returns:
        ``(ids, features, labels)`` with the shapes above; values read back from the cache are
        bit-identical to those computed.

    A miss is built under :func:`ftsweep.cache.build_once`: concurrent callers of one key (trials
    of a sweep) wait for a single ``compute`` and then read its file, which is written to a
    temporary file in ``cache_dir`` and moved into place with ``os.replace``, so an interrupted
    write never leaves a partial cache file. A failed ``compute`` is not remembered: its
    exception reaches the caller and the next caller computes again.
    """
    key_json = _canonical_key(key)
    path = cache_path(cache_dir, key)
    found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    computed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def valid(p: Path) -> bool:
        nonlocal found
        found = _read_cached(p, key_json)
        return found is not None

    def build(tmp: Path) -> None:
        nonlocal computed
        ids, features, labels = _check_computed(compute())
        with open(tmp, "wb") as fh:
            pq.write_table(_to_table(ids, features, labels, key_json), fh)
            fh.flush()
            os.fsync(fh.fileno())
        computed = ids, features, labels

    build_once(path, build, valid=valid, remember_failure=False)
    result = computed if computed is not None else found
    assert result is not None  # build_once returned: the file was valid or was just built
    return result
