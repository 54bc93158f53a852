"""Step kinds, declared in the config's `steps:` node: each a doit task group, one subtask per pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.common.errors import ConfigError
from mlops.common.names import IDENTIFIER, PLAIN_FILE

STEPS = "steps"
FIELDS = ("doc", "outputs", "needs", "dated", "tracking")
TRACKED = ("metrics", "artifacts")  # what a kind's `tracking:` may list: its outputs logged as either
MAX_FILE = 200  # characters: a staged output's name adds a prefix, and file systems stop at 255


@dataclass(frozen=True)
class StepKind:
    """A kind of step: its doc, the files it writes, the kinds whose outputs it reads, dated or not."""

    name: str
    doc: str
    outputs: dict[str, str]
    needs: tuple[str, ...] = ()
    dated: bool = False
    metrics: tuple[str, ...] = ()  # outputs (JSON) whose numbers experiment tracking logs as metrics
    artifacts: tuple[str, ...] = ()  # outputs experiment tracking logs as files

    def files(self, date: str | None) -> dict[str, str]:
        """Return each output's file name, for this date when the kind is dated."""
        return {name: file.format(date=date) for name, file in self.outputs.items()}


def step_kinds(values: dict[str, Any]) -> dict[str, StepKind]:
    """Return the step kinds declared under `steps:`, in order, each checked."""
    node = values.get(STEPS, {})
    if not isinstance(node, dict):
        raise ConfigError(f"{STEPS}: must map step kind names to their doc, outputs and needs")
    kinds: dict[str, StepKind] = {}
    for name, spec in node.items():
        kinds[str(name)] = _kind(str(name), spec, kinds)
    return kinds


def _kind(name: str, spec: Any, declared: dict[str, StepKind]) -> StepKind:
    where = f"{STEPS}.{name}"
    if not IDENTIFIER.match(name) or not isinstance(spec, dict):
        raise ConfigError(f"{where}: a step kind is a plain name mapped to doc, outputs and needs")
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: not a step kind setting; choose one of: {', '.join(FIELDS)}")
    dated = spec.get("dated", False)
    if not isinstance(dated, bool):
        raise ConfigError(f"{where}.dated: must be true or false")
    needs = _needs(where, spec.get("needs") or [], declared)
    outputs = _outputs(where, spec.get("outputs"), dated)
    tracked = _tracked(f"{where}.tracking", spec.get("tracking") or {}, outputs)
    return StepKind(name, str(spec.get("doc") or f"Run each pipeline's {name} step."), outputs, needs, dated,
                    tracked["metrics"], tracked["artifacts"])


def _tracked(where: str, spec: Any, outputs: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Return the outputs a kind's `tracking:` lists as metrics and as artifacts."""
    if not isinstance(spec, dict) or set(spec) - set(TRACKED):
        raise ConfigError(f"{where}: lists outputs under {' and '.join(TRACKED)}, e.g. {{artifacts: [model]}}")
    tracked = {}
    for field in TRACKED:
        names = spec.get(field) or []
        if not isinstance(names, list) or any(name not in outputs for name in names):
            raise ConfigError(f"{where}.{field}: must list outputs of this kind; choose from: {', '.join(outputs)}")
        tracked[field] = tuple(str(name) for name in names)
    return tracked


def _needs(where: str, needs: Any, declared: dict[str, StepKind]) -> tuple[str, ...]:
    if not isinstance(needs, list) or any(need not in declared for need in needs) or len(set(needs)) < len(needs):
        choices = ", ".join(declared) or "none declared before it"
        raise ConfigError(f"{where}.needs: must list step kinds declared before it, each once; choose from: {choices}")
    dated = [need for need in needs if declared[need].dated]
    if dated:
        # Its input would be one file per date: there is no one file to depend on.
        raise ConfigError(f"{where}.needs: '{dated[0]}' is dated (one output per date); a step kind cannot "
                          "need a dated kind")
    return tuple(needs)


def _outputs(where: str, outputs: Any, dated: bool) -> dict[str, str]:
    if not isinstance(outputs, dict) or not outputs:
        raise ConfigError(f"{where}.outputs: must map output names to file names, e.g. {{model: model.pkl}}")
    seen: dict[str, str] = {}
    for name, file in outputs.items():
        plain = isinstance(file, str) and len(file) <= MAX_FILE and PLAIN_FILE.match(file.replace("{date}", "date"))
        if not IDENTIFIER.match(str(name)) or not plain:
            raise ConfigError(f"{where}.outputs.{name}: an output is a plain name mapped to a file name "
                              f"in the step's folder (letters, digits, _ . -; not starting with '.'; up to {MAX_FILE})")
        if ("{date}" in file) != dated:
            raise ConfigError(f"{where}.outputs.{name}: '{file}': a dated step's file names hold {{date}}, "
                              "and only dated steps' do")
        if file in seen:
            raise ConfigError(f"{where}.outputs.{name}: '{file}' is also the file of output '{seen[file]}'; "
                              "give each output its own file")
        seen[file] = str(name)
    return {str(name): str(file) for name, file in outputs.items()}
