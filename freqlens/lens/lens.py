"""The lens: temporary forward hooks on a model's probe points, handing each output to observers.

Hooks live only inside ``with Lens(...)``; on exit (also on an exception) they are removed and the
model's train/eval flags and ``requires_grad`` flags are restored. Outputs are passed on as they are
produced and never stored, so memory does not grow with the number of probe points or batches.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from freqlens.lens.probes import ProbePoint

Observer = Callable[[ProbePoint, torch.Tensor], None]
"""Called as ``observer(point, features)`` with features in (B, C, H, W), prefix tokens dropped."""


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's ``training`` flag and every parameter's ``requires_grad`` on exit."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag in grads:
            param.requires_grad_(flag)


class Lens:
    """Attach observers to a model's probe points for the duration of a ``with`` block.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        >>> seen = []
        >>> with Lens(net, [ProbePoint("0")], lambda p, f: seen.append(f.shape)) as lens:
        ...     _ = lens.model(torch.zeros(2, 3, 8, 8))
        >>> seen
        [torch.Size([2, 4, 8, 8])]
    """

    def __init__(self, model: nn.Module, points: Sequence[ProbePoint], observer: Observer):
        names = [p.name for p in points]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate probe points in {names}")
        self.model = model
        self.points = list(points)
        self.observer = observer
        self._input_hw: tuple[int, int] | None = None
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> "Lens":
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(preserved_state(self.model))
            self.model.eval()
            stack.callback(self._forget_input)
            handle = self.model.register_forward_pre_hook(self._record_input)
            stack.callback(handle.remove)
            for point in self.points:
                module = self.model.get_submodule(point.name)
                handle = module.register_forward_hook(self._make_hook(point))
                stack.callback(handle.remove)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None

    def _forget_input(self) -> None:
        self._input_hw = None

    def _record_input(self, _module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            self._input_hw = (int(x.shape[-2]), int(x.shape[-1]))

    def _make_hook(self, point: ProbePoint):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if self._input_hw is None:
                raise RuntimeError("the lens saw a probe output before the model's input; call the model itself")
            self.observer(point, point.to_nchw(output, self._input_hw))

        return hook
