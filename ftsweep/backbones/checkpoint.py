"""Import pre-trained weights into a headless backbone, strictly.

Three steps, each usable alone:

1. :func:`load_state_dict_file` reads a file with ``torch.load(..., weights_only=True)`` (never a
   full unpickle) and unwraps the usual containers, in this order, repeatedly (first hit wins):
   ``state_dict`` (MoCo, timm/Lightning training checkpoints), ``model`` (MAE, DeiT),
   ``module``, ``network``, ``online_backbone``, ``online_network_state_dict`` (PyTorch-BYOL),
   ``teacher`` (DINO). Anything that is not then a mapping of ``str`` → ``Tensor`` is refused.
2. :func:`remap_state_dict` turns the keys of a known checkpoint format into the backbone's
   own names and drops what is not backbone (momentum encoders, queues, projectors,
   predictors, decoders, classifier heads). A ``module.`` prefix on *every* key (DataParallel)
   is stripped first. Formats:

   =============== ======================================== =====================================
   format          backbone keys kept (prefix stripped)     also dropped
   =============== ======================================== =====================================
   ``moco_v2``     ``encoder_q.`` (v3: ``base_encoder.``)   ``fc.*`` (the MLP projector), heads
   ``simclr``      ``backbone.`` or ``encoder.``            heads (e.g. SimCLR's ``fc`` MLP)
   ``byol``        ``online_network.encoder.``,             heads
                   ``online_network.backbone.``,
                   ``online_encoder.net.``, ``online_backbone.``
   ``mae``         all                                      ``decoder*``, ``mask_token``, heads
   ``timm``        all                                      heads
   ``torchvision`` all (same rule as ``timm``)              heads
   ``ftsweep``     ``backbone.``                            nothing
   ``lightning``   ``model.`` or ``net.`` (a LightningModule    heads
                   holding the network as ``self.model`` /
                   ``self.net``; never auto-detected)
   =============== ======================================== =====================================

   Keys outside the kept prefix (``encoder_k.``, ``queue``, ``projector.``, ``predictor.``,
   ``target_network.`` …) are dropped. *Heads* are classifier layers a headless backbone does
   not have: ``fc.*``, ``classifier.*``, ``head.weight``/``head.bias``, ``head.fc.*``,
   ``head.<i>.*`` (MLP heads), ``head_dist.*``, ``last_linear.*``, and for a timm backbone its
   own classifier's keys, whatever their names (``factory.classifier_keys``).
   ``format="auto"`` picks one from the key set (:func:`detect_format`).
3. :func:`load_backbone_weights` compares the remapped keys and shapes with
   ``backbone.state_dict()`` and raises :class:`CheckpointError` naming the missing keys,
   unexpected keys and shape mismatches — never a silent ``strict=False``. The one tolerated
   gap is a missing BatchNorm ``num_batches_tracked`` counter (older checkpoints lack it; it is
   not a weight and torch fills it in).

The MoCo projection head that step 2 drops can be loaded on its own with
:func:`load_projection_head` (the UOT paper selects on MoCo-v2's 128-d ``fc`` output, Sec. 4.1).
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "CHECKPOINT_FORMATS",
    "CONTAINER_KEYS",
    "PROJECTION_FORMATS",
    "CheckpointError",
    "check_backbone_weights",
    "detect_format",
    "load_backbone_weights",
    "check_timm_weights",
    "load_projection_head",
    "load_state_dict_file",
    "remap_state_dict",
    "resolve_format",
]

CONTAINER_KEYS = (
    "state_dict",
    "model",
    "module",
    "network",
    "online_backbone",
    "online_network_state_dict",
    "teacher",
)
MAX_NESTING = 4
SHOW_KEYS = 5

HEAD_PATTERNS = (
    r"^fc\.",
    r"^classifier\.",
    r"^head\.(weight|bias)$",
    r"^head\.fc\.",
    r"^head\.\d+\.",
    r"^head_dist\.",
    r"^last_linear\.",
)
MAE_PATTERNS = (r"^decoder", r"^mask_token$")


class CheckpointError(ValueError):
    """A checkpoint that is not a state dict, or does not fit the backbone."""


@dataclass(frozen=True)
class _Format:
    """Keep keys under the first matching prefix (stripped); drop keys matching ``drop``."""

    prefixes: tuple[str, ...]
    drop: tuple[str, ...]


CHECKPOINT_FORMATS: dict[str, _Format] = {
    "moco_v2": _Format(("encoder_q.", "base_encoder."), HEAD_PATTERNS),
    "simclr": _Format(("backbone.", "encoder."), HEAD_PATTERNS),
    "byol": _Format(
        (
            "online_network.encoder.",
            "online_network.backbone.",
            "online_encoder.net.",
            "online_backbone.",
        ),
        HEAD_PATTERNS,
    ),
    "mae": _Format(("",), MAE_PATTERNS + HEAD_PATTERNS),
    "timm": _Format(("",), HEAD_PATTERNS),
    "torchvision": _Format(("",), HEAD_PATTERNS),
    "ftsweep": _Format(("backbone.",), ()),
    "lightning": _Format(("model.", "net."), HEAD_PATTERNS),
}


def _preview(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOW_KEYS])
    return shown + (f", … ({len(keys) - SHOW_KEYS} more)" if len(keys) > SHOW_KEYS else "")


def _check_state_dict(obj: object, where: str) -> dict[str, Tensor]:
    """Return ``obj`` as a dict if it maps ``str`` to ``Tensor``; else raise CheckpointError."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where} is not a state dict: found {type(obj).__name__}")
    bad_keys = [k for k in obj if not isinstance(k, str)]
    bad_values = [k for k, v in obj.items() if isinstance(k, str) and not isinstance(v, Tensor)]
    if bad_keys or bad_values:
        found = [f"{k!r}: {type(obj[k]).__name__}" for k in bad_values] + [
            f"non-str key {k!r}" for k in bad_keys
        ]
        raise CheckpointError(
            f"{where} is not a state dict: found {type(obj).__name__} with keys "
            f"{_preview([str(k) for k in obj])} — not str → Tensor: {_preview(found)}"
        )
    if not obj:
        raise CheckpointError(f"{where} is not a state dict: found an empty mapping")
    return dict(obj)


def _torch_file(path: Path) -> bool:
    """``path`` starts as a file of ``torch.save`` does: a zip archive, or (the legacy format) a
    pickle's protocol opcode."""
    import zipfile

    with open(path, "rb") as f:
        first = f.read(1)
    return first == b"\x80" or zipfile.is_zipfile(path)


def load_state_dict_file(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Read a checkpoint file into a flat ``str`` → ``Tensor`` dict on the CPU.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)`` and unwraps the containers
    in :data:`CONTAINER_KEYS` (a container key is followed only when its value is a mapping).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file holds something else than a state dict (a pickled module or
            object, a list, a mapping with non-tensor values …) or cannot be read (empty,
            truncated).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        return _check_state_dict(_load_safetensors(path), str(path))
    try:
        # a training checkpoint of MAE, DeiT, DINO or timm's train.py keeps its argparse
        # arguments beside the weights: a plain attribute holder, safe to rebuild
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not _torch_file(path):  # an HTML error page, a text file: no pickle at all
            raise _not_torch(path) from err
        raise CheckpointError(
            f"{path} is not a state dict: it holds {_refused_object(err)}, which weights-only loading "
            "refuses (unpickling it could run code from the file); save the weights alone: "
            "torch.save(model.state_dict(), PATH), or, from a file you trust, the state dict inside "
            "it (loaded with weights_only=False)"
        ) from err
    except (EOFError, RuntimeError) as err:  # empty, truncated or not a torch file at all
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} cannot be read as a torch checkpoint ({path.stat().st_size} bytes: {first}); "
            "is it empty, truncated or still being copied?"
        ) from err
    except Exception as err:  # bytes that start like a pickle and are none: the unpickler's own error
        if _torch_file(path):
            raise
        raise _not_torch(path) from err
    for _ in range(MAX_NESTING):
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    return _check_state_dict(obj, str(path))


def _not_torch(path: Path) -> CheckpointError:
    head = path.read_bytes()[:16]
    return CheckpointError(
        f"{path} is not a torch checkpoint ({path.stat().st_size} bytes, starting "
        f"{head!r}): neither a zip archive (torch.save) nor a pickle; a failed download?"
    )


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    """A ``.safetensors`` file's tensors on the CPU (``torch.load`` hands such a path to
    safetensors, whose errors are none of torch's)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{path} cannot be read as safetensors ({path.stat().st_size} bytes: {err}); "
            "is it empty, truncated or still being copied?"
        ) from err


#: torch's name for a class its weights-only unpickler refuses ("Unsupported global: GLOBAL x.Y")
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _refused_object(err: Exception) -> str:
    """What a weights-only load refused, from torch's message (which spans a paragraph with
    terminal escapes): ``an object of class x.Y`` or ``a pickled object``."""
    found = _REFUSED_GLOBAL.search(str(err))
    return f"an object of class {found.group(1)}" if found else "a pickled object"


def _strip_data_parallel(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _is_head(key: str) -> bool:
    return any(re.search(p, key) for p in HEAD_PATTERNS)


def detect_format(state: Mapping[str, Tensor]) -> str:
    """Guess the checkpoint format from its keys (see the module docstring for the formats).

    Order: MoCo (``encoder_q.``/``base_encoder.``), BYOL (``online_*``), MAE (``decoder*`` or
    ``mask_token``), ``backbone.`` keys (``ftsweep`` when every key is a headless backbone key,
    else ``simclr``), ``encoder.`` keys (``simclr``), else a plain ``timm``/torchvision dict.
    """
    keys = list(_strip_data_parallel(state))

    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if has("encoder_q.", "base_encoder."):
        return "moco_v2"
    if has("online_network.", "online_encoder.", "online_backbone."):
        return "byol"
    if has("decoder") or "mask_token" in keys:
        return "mae"
    if has("backbone."):
        only_backbone = all(k.startswith("backbone.") for k in keys)
        headless = not any(_is_head(k.removeprefix("backbone.")) for k in keys)
        return "ftsweep" if only_backbone and headless else "simclr"
    if has("encoder."):
        return "simclr"
    return "timm"


def resolve_format(state: Mapping[str, Tensor], format: str = "auto") -> str:
    """``format`` itself, or :func:`detect_format` of ``state`` when it is ``"auto"``."""
    return detect_format(state) if format == "auto" else format


def remap_state_dict(
    state: Mapping[str, Tensor],
    format: str = "auto",
    keep: Collection[str] = (),
    heads: Collection[str] = (),
) -> dict[str, Tensor]:
    """Rename a checkpoint's keys to a headless backbone's and drop everything else.

    Args:
        state: a flat ``str`` → ``Tensor`` state dict (see :func:`load_state_dict_file`).
        format: ``"auto"`` or a key of :data:`CHECKPOINT_FORMATS`.
        keep: the backbone's own keys: one of them is kept though it looks like a classifier
            (SelecSLS's ``head.<i>.`` layers are its last convolutions, not a classifier).
        heads: the backbone's own classifier keys (``ftsweep.backbones.factory.classifier_keys``:
            a timm model's head, whatever its names), dropped like the formats' head patterns.

    Returns:
        A new dict; tensors are shared, not copied.

    Raises:
        CheckpointError: unknown format, or no key under the format's prefixes.
    """
    name = resolve_format(state, format)
    if name not in CHECKPOINT_FORMATS:
        raise CheckpointError(
            f"unknown checkpoint format {format!r}; known: auto, {', '.join(CHECKPOINT_FORMATS)}"
        )
    rule = CHECKPOINT_FORMATS[name]
    state = _strip_data_parallel(state)
    prefix = next((p for p in rule.prefixes if any(k.startswith(p) for k in state)), None)
    if prefix is None:
        raise CheckpointError(
            f"format {name!r}: no key starts with {' or '.join(map(repr, rule.prefixes))}; "
            f"keys: {_preview(list(state))}"
        )
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix) :]
        if key not in keep and (key in heads or any(re.search(p, key) for p in rule.drop)):
            continue
        out[key] = value
    if not out:
        raise CheckpointError(f"format {name!r}: nothing left after dropping non-backbone keys")
    return out


def _misfit(
    expected: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    where: str,
    name: str,
    format: str,
    target: str,
) -> CheckpointError | None:
    """The error naming missing/unexpected keys and shape mismatches, or None when they fit."""
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs backbone {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    used = f"auto → {name!r}" if format == "auto" else repr(name)
    if not (missing or unexpected or mismatched):
        nonfinite = [
            k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
        ]
        if not nonfinite:
            return None
        return CheckpointError(
            f"checkpoint {where!r} (format {used}) holds NaN or infinite values in "
            f"{len(nonfinite)} tensors ({_preview(nonfinite)}): training from it would fail at its "
            "first batch; was it saved after the loss diverged?"
        )
    parts = [
        f"{len(missing)} missing keys ({_preview(missing)})" if missing else "",
        f"{len(unexpected)} unexpected keys ({_preview(unexpected)})" if unexpected else "",
        f"{len(mismatched)} shape mismatches ({_preview(mismatched)})" if mismatched else "",
    ]
    return CheckpointError(
        f"checkpoint {where!r} (format {used}) does not fit {target}: " + "; ".join(p for p in parts if p)
    )


def load_backbone_weights(backbone: nn.Module, path: str | PathLike[str], *, format: str = "auto") -> None:
    """Load a checkpoint file into ``backbone``, requiring an exact key and shape match.

    ``path`` may also be a named weights value (``moco_v2_800ep``, ``torchvision:IMAGENET1K_V2``,
    ``timm``; see :mod:`ftsweep.backbones.weights`) when no file of that name exists; it is
    resolved against ``backbone.backbone_name`` (set by :func:`~ftsweep.backbones.create_backbone`).

    Raises:
        CheckpointError: naming the missing keys, unexpected keys and shape mismatches (first
            few of each with their counts); ``backbone`` is left untouched in that case.
        ConfigError: a named value that cannot be resolved (see ``resolve_weights``).
    """
    from ftsweep.backbones.weights import is_named_weights, load_named_weights

    if is_named_weights(str(path)) and not Path(path).is_file():
        name = getattr(backbone, "backbone_name", None)
        if name is None:
            raise CheckpointError(
                f"named weights {str(path)!r} need a backbone built by create_backbone (no backbone_name)"
            )
        load_named_weights(backbone, name, str(path), format=format)
        return
    from ftsweep.backbones.factory import classifier_keys

    raw = load_state_dict_file(path)
    name = resolve_format(raw, format)
    own = backbone.state_dict()
    heads = classifier_keys(backbone.backbone_name) if hasattr(backbone, "backbone_name") else frozenset()
    state = remap_state_dict(raw, name, keep=own.keys(), heads=heads)
    error = _misfit(own, state, str(path), name, format, type(backbone).__name__)
    if error is not None:
        raise _with_fitting_format(error, raw, own, format, heads)
    backbone.load_state_dict(state, strict=True)


def _with_fitting_format(
    error: CheckpointError,
    raw: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    format: str,
    heads: Collection[str] = (),
) -> CheckpointError:
    """``error``, naming the other formats under which the checkpoint would fit, if any (an
    auto-detected format can be wrong: a timm ViT whose own keys start with ``encoder.`` reads
    as SimCLR)."""
    fits = []
    for other in CHECKPOINT_FORMATS:
        if other == format:
            continue
        try:
            state = remap_state_dict(raw, other, keep=expected.keys(), heads=heads)
        except CheckpointError:
            continue
        if _misfit(expected, state, "", other, other, "") is None:
            fits.append(other)
    if not fits:
        return error
    return CheckpointError(f"{error}; it fits as checkpoint_format: {' or '.join(fits)}")


def check_backbone_weights(backbone: str, path: str | PathLike[str], *, format: str = "auto") -> None:
    """Check that a checkpoint file loads (``weights_only=True``) and fits ``backbone`` without
    building its weights: the backbone is created on the ``meta`` device and its state-dict keys
    and shapes are compared with the remapped checkpoint's.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: not a state dict, or the keys/shapes do not fit (a few of each named).
    """
    from ftsweep.backbones.factory import classifier_keys, meta_backbone

    raw = load_state_dict_file(path)
    name = resolve_format(raw, format)
    expected = meta_backbone(backbone).state_dict()
    heads = classifier_keys(backbone)
    state = remap_state_dict(raw, name, keep=expected.keys(), heads=heads)
    error = _misfit(expected, state, str(path), name, format, backbone)
    if error is not None:
        raise _with_fitting_format(error, raw, expected, format, heads)


def check_timm_weights(backbone: str, path: str | PathLike[str]) -> None:
    """A timm weights file (``pretrained: timm``) reads and fits the headless ``backbone``, its
    classifier left out (:func:`~ftsweep.backbones.weights.timm_state`); compared with the
    backbone built on the ``meta`` device.

    Raises:
        CheckpointError: unreadable, or keys/shapes that do not fit (a few of each named).
    """
    from ftsweep.backbones.factory import meta_backbone
    from ftsweep.backbones.weights import timm_state

    state = timm_state(path, backbone)
    error = _misfit(meta_backbone(backbone).state_dict(), state, str(path), "timm", "timm", backbone)
    if error is not None:
        raise error


#: formats whose checkpoints carry a projection head :func:`load_projection_head` can build
PROJECTION_FORMATS = ("moco_v2",)
_HEAD_KEY = re.compile(r"^fc\.(?:(\d+)\.)?(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _head_layer(index: str, params: Mapping[str, Tensor], where: str) -> nn.Module:
    """One layer of a projection MLP from its parameters: Linear (2-D weight) or BatchNorm1d."""
    weight = params.get("weight")
    if weight is not None and weight.dim() == 2:
        out_dim, in_dim = weight.shape
        layer: nn.Module = nn.Linear(in_dim, out_dim, bias="bias" in params)
    elif "running_mean" in params:
        dim = params["running_mean"].shape[0]
        layer = nn.BatchNorm1d(dim, affine="weight" in params)
    else:
        raise CheckpointError(
            f"{where}: projection layer fc.{index} is neither a Linear (2-D weight) nor a "
            f"BatchNorm1d (running_mean); its keys: {', '.join(sorted(params))}"
        )
    expected = set(layer.state_dict()) - {"num_batches_tracked"}
    if not expected <= set(params) <= expected | {"num_batches_tracked"}:
        raise CheckpointError(
            f"{where}: projection layer fc.{index} has keys {sorted(params)}, "
            f"a {type(layer).__name__} needs {sorted(expected)}"
        )
    layer.load_state_dict({k: v for k, v in params.items() if k in expected}, strict=False)
    return layer


def load_projection_head(path: str | PathLike[str], *, format: str = "auto") -> nn.Module:
    """Build the MoCo query encoder's projection head ``encoder_q.fc`` from a checkpoint file.

    The head is what maps the pooled backbone features to MoCo's embedding, the features the UOT
    paper selects with for MoCo-v2 (Sec. 4.1: "128-dim features from the final FC layer").
    Layouts (keys after the ``module.`` DataParallel prefix and ``encoder_q.`` /
    ``base_encoder.``):

    - MoCo v1: ``fc.weight``, ``fc.bias`` → ``nn.Linear(2048, 128)``;
    - MoCo v2 (``--mlp``): ``fc.0.*`` Linear(2048, 2048), ReLU, ``fc.2.*`` Linear(2048, 128) →
      ``nn.Sequential(Linear, ReLU, Linear)``;
    - MoCo v3: ``fc.<i>.*`` Linear (no bias) / BatchNorm1d layers with ReLU at the indices that
      hold no weights → the same ``nn.Sequential``.

    Every index without weights between two layers is a ReLU (the only parameter-free layer of
    these heads). The output is the raw last-layer output, not L2-normalised (MoCo normalises
    after the encoder; cosine costs and cosine k-means are scale-free).

    Args:
        path: checkpoint file (read as in :func:`load_state_dict_file`).
        format: ``"auto"`` or a key of :data:`CHECKPOINT_FORMATS`; must resolve to one of
            :data:`PROJECTION_FORMATS`.

    Returns:
        The head in eval mode, on the CPU, float32. Shape: (B, backbone features) → (B, out_dim).

    Raises:
        CheckpointError: the format has no projection head, the checkpoint holds no ``fc.*``
            keys under the query encoder, or they do not form a Linear/BatchNorm1d MLP.
    """
    raw = load_state_dict_file(path)
    name = resolve_format(raw, format)
    where = f"checkpoint {str(path)!r} (format {name!r})"
    if name not in PROJECTION_FORMATS:
        raise CheckpointError(
            f"{where}: projection heads are read from {', '.join(PROJECTION_FORMATS)} checkpoints only"
        )
    state = _strip_data_parallel(raw)
    prefixes = CHECKPOINT_FORMATS[name].prefixes
    prefix = next((p for p in prefixes if any(k.startswith(p) for k in state)), prefixes[0])
    head = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix + "fc.")}
    if not head:
        raise CheckpointError(f"{where} has no projection head: no key starts with {prefix}fc.")
    layers: dict[str, dict[str, Tensor]] = {}
    for key, value in head.items():
        match = _HEAD_KEY.match(key)
        if match is None:
            raise CheckpointError(f"{where}: unexpected projection-head key {prefix}{key}")
        layers.setdefault(match.group(1) or "", {})[match.group(2)] = value.float()
    if "" in layers and len(layers) > 1:
        raise CheckpointError(f"{where}: projection head mixes fc.weight with fc.<i>.* keys")
    if "" in layers:  # MoCo v1: one Linear
        return _head_layer("", layers[""], where).eval()
    indices = sorted(int(i) for i in layers)
    if indices[0] != 0:
        raise CheckpointError(f"{where}: projection head starts at fc.{indices[0]}, not fc.0")
    modules: list[nn.Module] = []
    width: int | None = None
    for i in range(indices[-1] + 1):
        if str(i) not in layers:
            modules.append(nn.ReLU())
            continue
        layer = _head_layer(str(i), layers[str(i)], where)
        dims = (
            (layer.in_features, layer.out_features)
            if isinstance(layer, nn.Linear)
            else (layer.num_features,) * 2
        )
        if width is not None and dims[0] != width:
            raise CheckpointError(
                f"{where}: projection layer fc.{i} takes {dims[0]} features, fc.* before it gives {width}"
            )
        width = dims[1]
        modules.append(layer)
    return nn.Sequential(*modules).eval()
