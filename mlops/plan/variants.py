"""A sweep's plan. A step whose config no variant changes (an upstream prepare) stays as it is, planned and
run once. A step some variant changes gets one copy per distinct config among the variants, in a folder
named for the swept values its config depends on (outputs/dev/pipeline_1/alpha=0.3/train); variants
whose copy of a step would be the same share it (a prepare that only `scale` changes runs once per
scale, whatever else is swept)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlops.common.canonical import canonical
from mlops.plan.steps import Step


@dataclass(frozen=True)
class SweepPlan:
    """The steps of a sweep, and for each step its values change, the copies standing in for it."""

    steps: list[Step]
    swept: dict[str, list[Step]]  # by the task name of the step they stand in for (train:pipeline_1)
    uses: dict[str, list[Step]]  # by variant: the copies it uses


def with_variants(base: list[Step], variants: list[tuple[str, list[Step]]]) -> SweepPlan:
    """Return the plan of a sweep from the plan without it and each variant's own plan (label, steps)."""
    by_variant = {label: {step.task: step for step in planned} for label, planned in variants}
    swept = _changed(base, variants)
    order = list(dict.fromkeys(step.task for _, planned in variants for step in planned))
    steps = [step for step in base if step.task not in swept]
    stand_ins: dict[str, list[Step]] = {}
    chosen: dict[tuple[str, str], Step] = {}  # (variant, task): the copy that variant uses
    for task in (task for task in order if task in swept):
        groups: dict[str, list[tuple[str, Step]]] = {}
        for label, planned in by_variant.items():
            if task in planned:
                step = _fed(planned[task], label, chosen)
                key = canonical([step.section, step.inputs])
                groups.setdefault(key, []).append((label, step))
        for members in groups.values():
            copy = _in_folder(members[0][1], _shared_label([label for label, _ in members]))
            for label, _ in members:
                chosen[(label, task)] = copy
            steps.append(copy)
            stand_ins.setdefault(task, []).append(copy)
    kinds = list(dict.fromkeys(step.kind.name for _, planned in variants for step in planned))
    steps.sort(key=lambda step: (kinds.index(step.kind.name), step.pipeline, step.variant or ""))
    uses: dict[str, list[Step]] = {}
    for (label, _), copy in chosen.items():
        uses.setdefault(label, []).append(copy)
    return SweepPlan(steps, stand_ins, uses)


def _changed(base: list[Step], variants: list[tuple[str, list[Step]]]) -> set[str]:
    """Return the tasks some variant changes: its section or inputs differ, or a step it needs changed."""
    by_task = {step.task: step for step in base}
    changed: set[str] = set()
    for _, planned in variants:
        for step in planned:  # upstream kinds first
            origin = by_task.get(step.task)
            upstream = any(f"{need}:{step.pipeline}" in changed for need in step.kind.needs)
            if origin is None or upstream or step.section != origin.section or step.inputs != origin.inputs:
                changed.add(step.task)
    return changed


def _fed(step: Step, label: str, chosen: dict[tuple[str, str], Step]) -> Step:
    """Return the step reading the outputs of the copies its variant uses of the steps it needs."""
    inputs, upstream = dict(step.inputs), list(step.upstream)
    for index, need in enumerate(step.kind.needs):
        used = chosen.get((label, f"{need}:{step.pipeline}"))
        if used is not None:
            planned = f"{step.env_dir}/{step.pipeline}/{need}/"
            inputs = {name: f"{used.folder}/{path[len(planned):]}" if path.startswith(planned) else path
                      for name, path in inputs.items()}
            upstream[index] = used.task
    return replace(step, inputs=inputs, upstream=tuple(upstream))


def _shared_label(labels: list[str]) -> str:
    """Return the swept values that all these variants share (`scale=2` of `alpha=1,scale=2` and
    `alpha=2,scale=2`): the values the shared step depends on."""
    parts = [part for part in labels[0].split(",") if all(part in label.split(",") for label in labels)]
    return ",".join(parts) or labels[0]


def _in_folder(step: Step, label: str) -> Step:
    """Return the copy of a step for the variants named `label`, in its own folder."""
    return replace(step, folder=f"{step.env_dir}/{step.pipeline}/{label}/{step.kind.name}", variant=label)
