"""Training checkpoints (`llmc train --out`, `--resume`): the model (config.json + model.safetensors), the trainer
state (trainer_state.json: the step reached and the seed), the AdamW moments (optimizer.npz) and the tokenizer.

The set is written atomically (llmc/_files.py: a fresh sibling folder, every file fsynced, swapped in at once), so
a run killed while saving, or a full disk, leaves the previous checkpoint whole, and --resume reads every file of
one set through one folder handle. A damaged file raises ValueError naming it, never a zipfile traceback."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import _files

__all__ = ["save_training_checkpoint", "load_training_checkpoint"]


def save_training_checkpoint(out, model, trainer, step: int, seed: int, tokenizer_json: bytes | None = None) -> None:
    """Write model + trainer_state.json + optimizer.npz (+ tokenizer.json) to folder `out`, atomically."""
    with _files.atomic_dir(out) as tmp:
        model._write_files(tmp)
        _files.write_chunks(tmp / "trainer_state.json", [json.dumps({"step": int(step), "seed": int(seed)}).encode()])
        buf = io.BytesIO()
        np.savez(buf, step_count=trainer.step_count,
                 **{f"m:{n}": m for n, m in zip(trainer.names, trainer.m)},
                 **{f"v:{n}": v for n, v in zip(trainer.names, trainer.v)})
        _files.write_chunks(tmp / "optimizer.npz", [buf.getvalue()])
        if tokenizer_json is not None:
            _files.write_chunks(tmp / "tokenizer.json", [tokenizer_json])


def load_training_checkpoint(path, trainer_factory):
    """(model, trainer, step) from a folder save_training_checkpoint wrote. trainer_factory(model) makes the
    Trainer whose AdamW moments and step count are then restored."""
    from .model import Model

    p = Path(path).expanduser()
    model = Model.load(p)  # itself reads through one folder handle
    with _files.stable_dir(p) as d:  # (messages below name p, not d)
        state_path, opt_path = os.path.join(d, "trainer_state.json"), os.path.join(d, "optimizer.npz")
        try:
            state = json.loads(_files.read_regular(state_path))
            step = int(state["step"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}/trainer_state.json: missing; is {p} a checkpoint of `llmc train`?") from None
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}/trainer_state.json: damaged ({e})") from None
        try:
            opt = np.load(io.BytesIO(_files.read_regular(opt_path)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}/optimizer.npz: missing; is {p} a checkpoint of `llmc train`?") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise ValueError(f"{p}/optimizer.npz: damaged ({e})") from None
    trainer = trainer_factory(model)
    try:
        with opt:
            for i, n in enumerate(trainer.names):
                trainer.m[i][...] = opt["m:" + n]
                trainer.v[i][...] = opt["v:" + n]
            trainer.step_count = int(opt["step_count"])
    except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{p}/optimizer.npz: damaged or from another model ({e})") from None
    return model, trainer, step
