"""A sweep's plan. A step whose config no variant changes (an upstream prepare) stays as it is, planned and
run once. A step some variant changes gets one copy per distinct config among the variants; variants
whose copy of a step would be the same share it (a prepare that only `scale` changes runs once per
scale, whatever else is swept).

A copy is named, and its folder too (outputs/dev/pipeline_1/alpha=0.3/train), for the values of every
swept key the step depends on: a key whose value alone, the others kept, changes its config (or the
copies it reads). Names are one to one by construction: two copies' first variants differ in a key the
step depends on, or the chain of single-key changes between them would never change its config. A
pipeline's rows in a sweep's table are named the same way, for its steps together.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace

from mlops.common.canonical import canonical
from mlops.config.sweeps import Variant, label
from mlops.plan.steps import Step


@dataclass(frozen=True)
class SweepPlan:
    """The steps of a sweep, and for each step its values change, the copies standing in for it."""

    steps: list[Step]
    swept: dict[str, list[Step]]  # by the task name of the step they stand in for (train:pipeline_1)
    uses: dict[str, list[Step]]  # by variant: the copies it uses


def with_variants(base: list[Step], variants: list[tuple[Variant, list[Step]]]) -> SweepPlan:
    """Return the plan of a sweep from the plan without it and each variant's own plan."""
    by_variant = {variant.label: {step.task: step for step in planned} for variant, planned in variants}
    swept = _changed(base, [planned for _, planned in variants])
    order = list(dict.fromkeys(step.task for _, planned in variants for step in planned))
    steps = [step for step in base if step.task not in swept]
    stand_ins: dict[str, list[Step]] = {}
    chosen: dict[tuple[str, str], Step] = {}  # (variant, task): the copy that variant uses
    for task in (task for task in order if task in swept):
        groups: dict[str, list[tuple[str, Step]]] = {}
        for variant, _ in variants:
            planned = by_variant[variant.label]
            if task in planned:
                step = _fed(planned[task], variant.label, chosen)
                groups.setdefault(canonical([step.section, step.inputs]), []).append((variant.label, step))
        names = group_names({name: key for key, members in groups.items() for name, _ in members},
                            [variant for variant, _ in variants])
        for key, members in groups.items():
            copy = _in_folder(members[0][1], names[key])
            for name, _ in members:
                chosen[(name, task)] = copy
            steps.append(copy)
            stand_ins.setdefault(task, []).append(copy)
    kinds = list(dict.fromkeys(step.kind.name for _, planned in variants for step in planned))
    steps.sort(key=lambda step: (kinds.index(step.kind.name), step.pipeline, step.variant or ""))
    uses: dict[str, list[Step]] = {}
    for (name, _), copy in chosen.items():
        uses.setdefault(name, []).append(copy)
    return SweepPlan(steps, stand_ins, uses)


def group_names(group_of: dict[str, Hashable], variants: list[Variant]) -> dict[Hashable, str]:
    """Return a name for each group of variants (`group_of`: variant label -> group), from the values of the
    swept keys the grouping depends on, as its first variant has them."""
    present = [variant for variant in variants if variant.label in group_of]
    dependent = _dependent(present, group_of)
    names: dict[Hashable, str] = {}
    for variant in present:
        names.setdefault(group_of[variant.label],
                         label(tuple(variant.values[index] for index in dependent)) if dependent else variant.label)
    if len(set(names.values())) < len(names):  # a sweep that is no full product: each group by a variant of its own
        names = {}
        for variant in present:
            names.setdefault(group_of[variant.label], variant.label)
    return names


def _dependent(variants: list[Variant], group_of: dict[str, Hashable]) -> list[int]:
    """Return the index of each swept key whose value alone, the other keys' values kept, changes the group."""
    found = []
    for index in range(len(variants[0].values) if variants else 0):
        seen: dict[tuple[tuple[str, str], ...], Hashable] = {}
        for variant in variants:
            others = variant.values[:index] + variant.values[index + 1:]
            if seen.setdefault(others, group_of[variant.label]) != group_of[variant.label]:
                found.append(index)
                break
    return found


def lineages(variants: list[Variant], uses: dict[str, list[Step]]) -> dict[str, dict[str, list[Step]]]:
    """Return, by pipeline, one entry per distinct set of copies its variants use (a sweep of another
    pipeline's keys makes none of its own), named for the swept keys its steps depend on."""
    used: dict[str, dict[str, list[Step]]] = {}
    for variant in variants:
        for step in uses.get(variant.label, []):
            used.setdefault(step.pipeline, {}).setdefault(variant.label, []).append(step)
    found: dict[str, dict[str, list[Step]]] = {}
    for pipeline, steps in used.items():
        group_of: dict[str, Hashable] = {name: tuple(sorted(step.task for step in chosen))
                                         for name, chosen in steps.items()}
        names = group_names(group_of, variants)
        for name, chosen in steps.items():
            found.setdefault(pipeline, {}).setdefault(names[group_of[name]], chosen)
    return found


def _changed(base: list[Step], variants: list[list[Step]]) -> set[str]:
    """Return the tasks some variant changes: its section or inputs differ, or a step it needs changed."""
    by_task = {step.task: step for step in base}
    changed: set[str] = set()
    for planned in variants:
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


def _in_folder(step: Step, label: str) -> Step:
    """Return the copy of a step for the variants named `label`, in its own folder."""
    return replace(step, folder=f"{step.env_dir}/{step.pipeline}/{label}/{step.kind.name}", variant=label)
