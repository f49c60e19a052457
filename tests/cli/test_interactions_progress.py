"""An interrupted `interactions` run keeps its finished images beside --out and the same call continues."""
from __future__ import annotations

import pytest

import freqlens.api
from freqlens.measures.interaction_order import InteractionOrder

SETTINGS = dict(grid=2, pairs=1, contexts=1, limit=4, device="cpu", progress=False)
QUANTITIES = ("mean_abs", "std_abs", "mean", "strength", "images")
IMAGE_INTERACTIONS = InteractionOrder.image_interactions


def _computing(monkeypatch, stop_after: int | None = None) -> list[int]:
    """Count the images the measure computes; raise KeyboardInterrupt after ``stop_after`` of them."""
    computed: list[int] = []

    def image_interactions(self, model, image, target, index):
        if len(computed) == stop_after:
            raise KeyboardInterrupt
        computed.append(index)
        return IMAGE_INTERACTIONS(self, model, image, target, index)

    monkeypatch.setattr(InteractionOrder, "image_interactions", image_interactions)
    return computed


def _interrupted(tmp_path, monkeypatch, **settings):
    out = tmp_path / "o"
    _computing(monkeypatch, stop_after=2)
    with pytest.warns(UserWarning, match="2 finished images are kept"), pytest.raises(KeyboardInterrupt):
        freqlens.api.interactions("test_resnet", out=out, **{**SETTINGS, **settings})
    assert not out.exists() and (tmp_path / ".o.progress" / "rank0.pt").is_file()
    return out


def test_an_interrupted_run_continues_where_it_stopped_with_the_same_result(tmp_path, monkeypatch):
    whole = freqlens.api.interactions("test_resnet", **SETTINGS).result
    out = _interrupted(tmp_path, monkeypatch)
    computed = _computing(monkeypatch)
    with pytest.warns(UserWarning, match="continuing from 2 finished images"):
        resumed = freqlens.api.interactions("test_resnet", out=out, **SETTINGS).result
    assert len(computed) == 2  # only the images the first run did not finish
    for key in QUANTITIES:
        assert resumed[key] == pytest.approx(whole[key], rel=1e-12), key
    assert (out / "results.json").is_file() and not (tmp_path / ".o.progress").exists()


def test_progress_of_another_setting_is_not_reused(tmp_path, monkeypatch):
    out = _interrupted(tmp_path, monkeypatch)
    computed = _computing(monkeypatch)
    with pytest.warns(UserWarning, match="progress of another run"):
        freqlens.api.interactions("test_resnet", out=out, **{**SETTINGS, "contexts": 2})
    assert len(computed) == 4
