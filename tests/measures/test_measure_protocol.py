"""The measure protocol's contract for measures that defer work (``Measure.settle``)."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from freqlens.measures.base import Measure


class _Deferred(Measure):
    """Keeps updates in a host-side pending sum, as the spectrum's fused path keeps device partials."""

    name = "deferred"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64), "sum")
        self.pending = 0.0

    def update(self, value: float) -> None:
        self.pending += value

    def settle(self) -> None:
        self.total += self.pending
        self.pending = 0.0

    def compute(self) -> float:
        self.settle()
        return float(self.total)


def test_every_state_reader_settles_deferred_work_first():
    a, b = _Deferred(), _Deferred()
    a.update(1.0)
    b.update(2.0)
    a.merge(b)  # settles both sides
    assert float(a.total) == 3.0 and b.pending == 0.0
    a.update(4.0)
    assert float(a.state_dict()["total"]) == 7.0
    a.update(5.0)
    a.to("cpu")
    assert float(a.total) == 12.0
    a.sync()  # no process group: returns at once, the pending work stays deferred (and is not lost)
    a.update(6.0)
    restored = _Deferred()
    restored.load_state_dict(a.state_dict())
    assert restored.compute() == a.compute() == 18.0


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo")
def test_sync_settles_deferred_work_before_reducing(tmp_path):
    """In a real (one-process gloo) group, ``sync`` must fold pending work into the states it all-reduces:
    read ``total`` directly (``compute`` would settle by itself and hide a ``sync`` that does not)."""
    assert not dist.is_initialized(), "another test left a process group behind"
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        a = _Deferred()
        a.update(1.0)
        a.settle()
        a.update(5.0)
        assert a.pending == 5.0 and float(a.total) == 1.0  # the deferred work is not in the state yet
        a.sync()
        assert a.pending == 0.0
        assert float(a.total) == 6.0  # settled, then all-reduced (a sum over one rank keeps it)
    finally:
        dist.destroy_process_group()
