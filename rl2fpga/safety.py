"""Untrusted input: run folders and configs are shared between people (DESIGN.md threat model).

Nothing read from a run folder may execute. This module holds the checks every load site uses:

* :func:`load_keras_model`: a Keras / QKeras network is deserialised only after its
  architecture JSON (``config.json`` in a zip ``.keras``, the ``model_config`` attribute of an
  HDF5 ``.h5``) was read *as data* and found to name only known layer classes (no ``Lambda``,
  no unknown custom objects, no module to import, no quantizer string that is not a plain
  call with literal arguments). A ``.keras`` that is not a zip (tf-keras would read it as HDF5,
  where ``safe_mode`` does not apply) is refused; zip ``.keras`` files load with
  ``safe_mode=True`` as a second line of defence.
* :func:`check_env_id`: environment ids only from gymnasium's registry (``module:Env`` would
  import ``module``).
* :func:`check_run_name`: run names are plain names, so a run folder stays under the runs root.
"""

from __future__ import annotations

import ast
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rl2fpga.errors import Rl2fpgaError

# Keras class names that are data, not code, beyond the public layers/initializers/...:
_MODEL_CLASSES = {"Functional", "Sequential", "Model", "InputLayer", "TensorShape", "__tuple__", "__tensor__",
                  "__numpy__", "__bytes__", "__typespec__", "__ellipsis__", "__slice__", "__lambda__"}
# never allowed, whatever a registry says: they carry Python code
_CODE_CLASSES = {"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"}
# modules a zip .keras config may name (tf-keras imports anything else it is told to)
_SAFE_MODULE = re.compile(r"^(keras|tf_keras|qkeras)(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# a QKeras quantizer given as a string, e.g. "quantized_bits(8,0,alpha=1)": name(literals)
_QUANTIZER_STR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\((.*)\))?\s*$", re.S)

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _allowed_classes(custom_objects: dict[str, Any] | None) -> set[str]:
    import tensorflow as tf

    names: set[str] = set(_MODEL_CLASSES)
    for mod in (tf.keras.layers, tf.keras.initializers, tf.keras.regularizers, tf.keras.constraints,
                tf.keras.activations):
        names.update(n for n in dir(mod) if not n.startswith("_"))
    names.update(custom_objects or {})
    return names - _CODE_CLASSES


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _check_quantizer_string(s: str, allowed: set[str], where: str, file: Path) -> None:
    m = _QUANTIZER_STR.match(s)
    if m is None or m.group(1) not in allowed:
        raise Rl2fpgaError(f"{file} names '{s[:60]}' at {where}, not a known quantizer or activation; "
                           "refusing to load it (regenerate the file with rl2fpga)")
    if m.group(3):
        try:
            call = ast.parse(f"f({m.group(3)})", mode="eval").body
        except SyntaxError:
            raise Rl2fpgaError(f"{file}: quantizer '{s[:60]}' at {where} is not a plain call; refusing to load it") from None
        assert isinstance(call, ast.Call)
        for a in [*call.args, *(k.value for k in call.keywords)]:
            try:
                ast.literal_eval(a)
            except ValueError:
                raise Rl2fpgaError(f"{file}: quantizer '{s[:60]}' at {where} has a non-literal argument; "
                                   "refusing to load it") from None


_STRING_CODE_KEYS = {"kernel_quantizer", "bias_quantizer", "recurrent_quantizer", "depthwise_quantizer",
                     "pointwise_quantizer", "state_quantizer", "activation", "quantizer"}


def check_model_config(config: Any, file: Path, custom_objects: dict[str, Any] | None = None) -> None:
    """Raise unless every object in a Keras architecture JSON is a known, code-free class."""
    allowed = _allowed_classes(custom_objects)
    for where, node in _walk(config):
        cls = node.get("class_name")
        if isinstance(cls, str):
            if cls in _CODE_CLASSES or "lambda" in cls.lower():
                raise Rl2fpgaError(f"{file} contains a {cls} layer ({where or 'top'}), which would run code from "
                                   "the file; refusing to load it (regenerate it with rl2fpga)")
            module = node.get("module")
            if module is not None and not _SAFE_MODULE.match(str(module)):
                raise Rl2fpgaError(f"{file} asks to import module '{str(module)[:60]}' ({where or 'top'}); "
                                   "refusing to load it")
            if cls == "function" and module is not None:
                continue
            if cls not in allowed:
                raise Rl2fpgaError(f"{file} names an unknown class '{cls[:60]}' ({where or 'top'}); refusing to load "
                                   "it (only Keras/QKeras layers are allowed)")
        for key in ("function", "module", "registered_name"):
            v = node.get(key)
            if key == "module" and v is not None and not _SAFE_MODULE.match(str(v)):
                raise Rl2fpgaError(f"{file} asks to import module '{str(v)[:60]}' ({where}); refusing to load it")
            if key == "function" and v is not None and not isinstance(v, str):
                raise Rl2fpgaError(f"{file} carries a Python function at {where}; refusing to load it")
        for key in _STRING_CODE_KEYS:
            v = node.get(key)
            if isinstance(v, str) and v:
                _check_quantizer_string(v, allowed, f"{where}.{key}", file)


def read_model_config(path: Path) -> Any:
    """The architecture JSON of a ``.keras`` (zip) or ``.h5`` model file, read as data only."""
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise Rl2fpgaError(f"{path} is corrupt or unsafe: not a Keras zip archive (an HDF5 file named .keras "
                               "would bypass safe_mode); regenerate it with rl2fpga")
        try:
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise Rl2fpgaError(f"{path} is corrupt ({type(e).__name__}: no readable config.json); regenerate it") from None
    if path.suffix == ".h5":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        except OSError as e:
            raise Rl2fpgaError(f"{path} is corrupt (not a readable HDF5 file: {str(e).splitlines()[0][:120]}); regenerate it") from None
        if raw is None:
            raise Rl2fpgaError(f"{path} has no model_config; it is not a Keras model file (regenerate it)")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise Rl2fpgaError(f"{path} has a corrupt model_config; regenerate it") from None
    raise Rl2fpgaError(f"{path}: models are loaded only from .keras (zip) or .h5 files")


def load_keras_model(path: str | Path, custom_objects: dict[str, Any] | None = None) -> Any:
    """Load a Keras/QKeras model from an untrusted file: inspect, then deserialise."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise Rl2fpgaError(f"model file {path} is missing; rerun the step that writes it")
    check_model_config(read_model_config(path), path, custom_objects)
    kwargs: dict[str, Any] = {"compile": False}
    if custom_objects:
        kwargs["custom_objects"] = custom_objects
    if path.suffix == ".keras":
        kwargs["safe_mode"] = True
    try:
        return tf.keras.models.load_model(path, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"model file {path} is corrupt ({first}); rerun the step that writes it") from None


# ------------------------------------------------------------------------------ env ids, names


def check_env_id(env_id: str) -> None:
    """Only ids registered in gymnasium's registry (ale-py's ALE/ ids included); never
    ``module:Env`` (gymnasium would import ``module`` from the current folder)."""
    if ":" in env_id:
        raise Rl2fpgaError(f"env.id '{env_id}' names a module to import ('module:Env'); only registered "
                           "Gymnasium ids are allowed, e.g. CartPole-v1 or ALE/Breakout-v5")
    import gymnasium as gym

    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        try:
            import ale_py

            gym.register_envs(ale_py)
        except ImportError:
            pass
    if env_id not in gym.registry:
        raise Rl2fpgaError(f"unknown environment id '{env_id}'; use a Gymnasium id such as CartPole-v1, "
                           "Acrobot-v1, Pendulum-v1, ALE/Breakout-v5 or Hopper-v5")


# constructor options an untrusted config may not set: files to read, windows to open, and the
# options that other env.* keys already own (Atari's frame skip, sticky actions, time limit)
_ENV_KWARGS_OWNED = {
    "frameskip": "env.frame_skip", "repeat_action_probability": "env.sticky_actions",
    "max_num_frames_per_episode": "env.max_episode_steps", "max_episode_steps": "env.max_episode_steps",
}


def check_env_kwargs(kwargs: dict, env_id: str) -> None:
    """``env.kwargs`` are passed to the environment's constructor: plain identifiers with scalar
    values only, nothing that names a file (``xml_file``) or opens a window (``render_mode``)."""
    for k, v in kwargs.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise Rl2fpgaError(f"env.kwargs key {k!r} is not a plain name; use the constructor's keyword names")
        low = k.lower()
        if low in _ENV_KWARGS_OWNED:
            raise Rl2fpgaError(f"env.kwargs.{k} is set by {_ENV_KWARGS_OWNED[low]}; set that key instead")
        if "file" in low or "path" in low or "dir" in low or low.startswith("render") or low == "apply_api_compatibility":
            raise Rl2fpgaError(f"env.kwargs.{k} is refused (configs are untrusted: no files, paths or rendering); "
                               f"remove it from the config of {env_id}")
        if not isinstance(v, bool | int | float | str):
            raise Rl2fpgaError(f"env.kwargs.{k} must be a scalar (true/false, a number or a string), got {v!r}")


def check_run_name(name: str) -> None:
    if not isinstance(name, str) or not RUN_NAME.match(name) or ".." in name:
        raise Rl2fpgaError(f"run name '{name}' must be a plain name (letters, digits, '.', '_', '-'; no "
                           "'/', no '..', not absolute); the run folder is <runs-dir>/<name>")


def run_folder(runs_dir: str | Path, name: str) -> Path:
    """``<runs_dir>/<name>`` for a checked plain name (never outside ``runs_dir``)."""
    check_run_name(name)
    root = Path(runs_dir).resolve()
    p = (root / name).resolve()
    if p.parent != root:
        raise Rl2fpgaError(f"run name '{name}' leaves the runs folder {root}; use a plain name")
    return Path(runs_dir) / name


# ------------------------------------------------------------------------------ data files


def load_npz(path: str | Path, what: str = "array file", fix: str = "rerun the step that writes it") -> dict[str, Any]:
    """Every array of an ``.npz`` (no pickles), or one clean error for a missing, empty,
    truncated or otherwise corrupt file."""
    import zipfile as _zip

    import numpy as np

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise Rl2fpgaError(f"{what} {path} is missing; {fix}") from None
    except (_zip.BadZipFile, EOFError, ValueError, OSError, KeyError) as e:
        why = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"{what} {path} is corrupt or truncated ({why}); {fix}") from None
