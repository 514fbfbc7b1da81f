"""The fused Adam update, called without `Optimizer.step`'s per-call Python.

torch's fused Adam updates every parameter in one kernel, but `Adam.step` wraps that kernel in a
profiler record, the step hooks, `_init_group` and a regrouping of the tensors by device and
dtype. For mlp-128 on this project's 2-core VM, `benchmarks/overhead.py` timed the update at
0.086-0.144 ms through `Adam.step` and 0.048-0.082 ms called directly (docs/measurements.md, "A
fourth sitting"), up to a tenth of a batch-32 training step. `adam_update` calls the same kernel
(`torch._fused_adam_`, or `_fused_adamw_` for decoupled weight decay) on the same tensors, with
the group's hyperparameters read at every call: the update is bit-identical to `Adam.step`
(tests/unit/training/test_fused_update.py), and the state, its `state_dict` and any change of
the learning rate stay the optimizer's own.

It defers to `Adam.step` wherever the two could differ: before the state exists (the first step
creates it), with step hooks, a gradient scaler's attributes or a `step` replaced on the
instance (a learning-rate scheduler's counter), for a group that is not fused or whose
hyperparameters are tensors, for sharded (DTensor) parameters, and for tensors on several
devices or of several dtypes. torch is pinned (constraints.txt), and the parity test fails
loudly if a new version changes the kernel's contract.

Which rows it applies to: every PyTorch row whose optimizer is a plain fused Adam. `zero` (its
wrapper steps the shard's Adam itself) and `fsdp` (DTensor parameters) keep `Adam.step`; the
record's `optimizer_call` says which a row used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

KernelCall = tuple[Callable[..., Any], list[list[torch.Tensor]], dict[str, Any]]


def adam_update(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    """What the loop calls to update: the direct kernel call for a fused Adam whose parameters
    are plain tensors, else `optimizer.step` itself."""
    groups = optimizer.param_groups
    if type(optimizer) is not torch.optim.Adam or not all(g["fused"] for g in groups):
        return optimizer.step
    if any(callable(getattr(p, "to_local", None)) for g in groups for p in g["params"]):
        return optimizer.step  # DTensor parameters: torch's sharding rules apply inside step

    @torch.no_grad()
    def update() -> Any:
        calls = kernel_calls(optimizer)
        if calls is None:
            return optimizer.step()
        for kernel, tensors, options in calls:
            torch._foreach_add_(tensors[-1], 1)  # the step counts, as `Adam.step` does first
            kernel(*tensors, **options)
        return None

    return update


def kernel_calls(optimizer: torch.optim.Optimizer) -> list[KernelCall] | None:
    """One kernel call per parameter group, as `Adam.step` would make them; None where
    `Adam.step` must run itself."""
    if (_global_optimizer_pre_hooks or _global_optimizer_post_hooks
            or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
            or "step" in vars(optimizer)
            or getattr(optimizer, "grad_scale", None) is not None
            or getattr(optimizer, "found_inf", None) is not None):
        return None
    calls = []
    for group in optimizer.param_groups:
        amsgrad = group["amsgrad"]
        beta1, beta2 = group["betas"]
        if (not group["fused"] or group["capturable"]
                or any(isinstance(s, torch.Tensor) for s in (group["lr"], beta1, beta2))):
            return None
        tensors: list[list[torch.Tensor]] = [[], [], [], [], [], []]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = optimizer.state.get(p)
            if not state:
                return None
            for column, tensor in zip(tensors, (
                    p, p.grad, state["exp_avg"], state["exp_avg_sq"],
                    state["max_exp_avg_sq"] if amsgrad else None, state["step"])):
                if tensor is not None:
                    column.append(tensor)
        if not tensors[0]:
            continue
        if len({(t.device, t.dtype) for t in tensors[0] + tensors[1]}) != 1:
            return None
        kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        calls.append((kernel, tensors, {
            "amsgrad": amsgrad, "lr": group["lr"], "beta1": beta1, "beta2": beta2,
            "weight_decay": group["weight_decay"], "eps": group["eps"],
            "maximize": group["maximize"], "grad_scale": None, "found_inf": None}))
    return calls
