"""Per-image progress of a long measure, kept beside ``--out`` so that an interrupted run continues.

The multi-order interaction measure costs ~130k forwards per image; losing an hour of finished images to
a Ctrl-C or a pre-empted job is not acceptable. After every image, the measure's state (a sum over
images, so it merges) is saved to ``.<out>.progress/rank<r>.pt``. Running the same command again loads
it and skips the finished images; a saved state from another model, checkpoint, image list or setting is
ignored with a warning. The folder is removed once the results are written. ``--out`` itself stays atomic.
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from freqlens.io.results import to_jsonable
from freqlens.measures.base import Measure


class Progress:
    """The saved state of one process's share of a run (see the module docstring)."""

    def __init__(self, out: str | Path, run: dict[str, Any], rank: int) -> None:
        out = Path(out)
        self.dir = out.parent / f".{out.name}.progress"
        self.file = self.dir / f"rank{rank}.pt"
        self.run = json.dumps(to_jsonable(run), sort_keys=True)  # what must match for a state to be reused
        self.done: set[int] = set()

    def resume(self, measure: Measure) -> int:
        """Load a saved state of the same run into ``measure``; the number of images it holds."""
        if not self.file.exists():
            return 0
        saved = torch.load(self.file, map_location="cpu", weights_only=True)  # the measure moves it on update
        if saved["run"] != self.run:
            warnings.warn(f"{self.dir} holds progress of another run (model, images or settings differ); "
                          "starting afresh")
            return 0
        measure.load_state_dict(saved["state"])
        self.done = set(saved["done"])
        return len(self.done)

    def save(self, measure: Measure, index: int) -> None:
        """Record image ``index`` as finished, with the state that includes it (atomically)."""
        self.done.add(index)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        torch.save({"run": self.run, "done": sorted(self.done), "state": measure.state_dict()}, tmp)
        os.replace(tmp, self.file)

    def clear(self) -> None:
        """Forget the progress once the results are written."""
        self.file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # another process's file may still be there
            self.dir.rmdir()
