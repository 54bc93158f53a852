"""A value override derived from the cached config of the rest equals composing it with Hydra, or is not derived."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import copy_project, doit, edit, run_doit, tiny_project
from mlops.config import ConfigError, derive
from mlops.config.cache import ConfigCache
from mlops.config.compose import compose

# Plain values and near misses: the ones `scalar` takes must read as Hydra reads them.
VALUES = ["0", "1", "-3", "+7", "10", "0.5", "-0.25", "3.0", "1.", ".5", "1e3", "1_000", "01", "00.5", "true",
          "True", "FALSE", "null", "NULL", "nan", "inf", "-inf", "abc", "a_b", "a-b", "e5", "x1", "true-ish",
          "null_value", "infinity", "2026-11-27", "2026-1-1", "a.b", "a b", "'q'", "a,b", "[1]", "{a: 1}",
          "${x}", "\u00e9", "", "_x", "a:b", "a/b"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("text", VALUES)
def test_a_plain_value_reads_as_hydra_reads_it(text: str) -> None:
    value = derive.scalar(text)
    if value is derive.UNPARSED:
        return
    hydras = OverridesParser.create().parse_overrides([f"key={text}"])[0].value()
    assert (type(value), value) == (type(hydras), hydras)


# Python's \\d and \\w match digits and letters of every script; Hydra's grammar reads ASCII only, unquoted.
BEYOND_ASCII = [
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661",  # a date in Arabic-Indic digits
    "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff10\uff11",  # in fullwidth digits
    "2026-01-0\u0661", "\u0661\u0662", "x\u0661", "\uff41\uff42\uff43", "\u00e9", "na\u00efve", "\u216b", "a\u200bb",
]
KEYS_BEYOND_ASCII = ["gr\u00f6\u00dfe", "a.gr\u00f6\u00dfe", "x\u0661", "\uff41"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
       | st.sampled_from(BEYOND_ASCII))
def test_any_text_the_fast_path_takes_reads_as_hydra_reads_it(text: str) -> None:
    value = derive.scalar(text)
    if value is derive.UNPARSED:
        return
    hydras = OverridesParser.create().parse_overrides([f"key={text}"])[0].value()
    assert (type(value), value) == (type(hydras), hydras)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=10) | st.sampled_from([*KEYS_BEYOND_ASCII, "a.b_c", "_x.y9"]))
def test_any_key_the_fast_path_takes_is_one_hydra_takes(key: str) -> None:
    if not derive.KEY.fullmatch(key):
        return
    parsed = OverridesParser.create().parse_overrides([f"{key}=1"])[0]
    assert parsed.key_or_group == key


@pytest.mark.parametrize("override", ["date=" + BEYOND_ASCII[0], "date=" + BEYOND_ASCII[1],
                                      f"pipelines.pipeline_1.train.{KEYS_BEYOND_ASCII[0]}=2"])
def test_a_word_beyond_ascii_that_hydra_refuses_is_not_derived(project: Path, override: str) -> None:
    edit(project / "conf/pipelines/pipeline_1.yaml", "  alpha: 1.0\n", f"  alpha: 1.0\n  {KEYS_BEYOND_ASCII[0]}: 1\n")
    with pytest.raises(ConfigError):
        compose(project, [override])
    assert cached(project, []).derived([override]) is None


def test_the_plain_values_cover_the_everyday_ones() -> None:
    assert [derive.scalar(text) for text in ("0.3", "10", "true", "null", "adam", "2026-11-27")] == [
        0.3, 10, True, None, "adam", "2026-11-27"]


def cached(root: Path, overrides: list[str]) -> ConfigCache:
    cache = ConfigCache(root)
    cache.store(overrides, compose(root, overrides))
    return cache


@pytest.mark.parametrize("overrides", [
    ["pipelines.pipeline_1.train.alpha=0.3"],
    ["env=prod", "pipelines.pipeline_1.train.alpha=7", "date=2026-02-03"],
    ["pipelines.pipeline_2.train.max_iter=null", "env=sandbox", "pipelines.pipeline_2.train.max_iter=adam"],
])
def test_a_derived_config_equals_a_composed_one(project: Path, overrides: list[str]) -> None:
    composed = [o for o in overrides if o.startswith("env=")]
    derived = cached(project, composed).derived(overrides)
    fresh = compose(project, overrides)
    assert derived is not None and derived.cached
    assert (derived.values, derived.env, derived.overrides) == (fresh.values, fresh.env, fresh.overrides)


@pytest.mark.parametrize("override", [
    "data.seed=3",  # pipeline_1's predict.seed is ${data.seed}
    "env=prod",  # a group choice: composed by Hydra
    "gcp.project=other",  # gcp.bucket is ${gcp.project}-models
    "pipelines.pipeline_1.train.alpha=[1,2]",  # not a plain scalar
    "pipelines.pipeline_1.train=3",  # a section, not a scalar
    "pipelines.pipeline_1.train.nope=3",  # no such key: composing says so
    "+pipelines.pipeline_1.train.beta=3",  # adds a key
    "tracking.token=abcd1234",  # secret-looking
])
def test_an_override_that_needs_hydra_is_not_derived(project: Path, override: str) -> None:
    assert cached(project, []).derived([override]) is None


@pytest.mark.parametrize("line", ["  copy: ${..train.alpha}", "  copy: ${oc.select:pipelines.pipeline_1.train.alpha}"])
def test_a_value_an_interpolation_may_reach_is_not_derived(project: Path, line: str) -> None:
    edit(project / "conf/pipelines/pipeline_1.yaml", "evaluate:\n", f"evaluate:\n{line}\n")
    assert cached(project, []).derived(["pipelines.pipeline_1.train.alpha=0.3"]) is None


def test_a_stale_cached_config_is_not_derived_from(project: Path) -> None:
    cache = cached(project, [])
    edit(project / "conf/pipelines/pipeline_1.yaml", "alpha: 1.0", "alpha: 2.0")
    assert cache.derived(["pipelines.pipeline_1.train.alpha=0.3"]) is None


def test_a_run_with_a_value_override_follows_it_and_what_depends_on_it(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    edit(root / "conf/pipelines/a.yaml", "evaluate:\n", "evaluate:\n  alpha: ${..train.alpha}\n")
    doit(root)
    assert doit(root, "train:a", "pipelines.a.train.alpha=0.7") == {"train:a"}
    assert "alpha=0.7" in (root / "outputs/dev/a/train/model.pkl").read_text()
    printed = run_doit(root, "print_config", "pipelines.a.train.alpha=0.9", "pipelines.b.train.alpha=0.8").stdout
    assert "alpha: 0.9" in printed.split("\n  b:")[0].split("evaluate:")[1]  # the interpolation followed
    assert "alpha: 0.8" in printed.split("\n  b:")[1]
    assert doit(root, "train:a", "pipelines.a.train.alpha=0.7") == set()  # up to date for this value
    assert doit(root, "train:a") == {"train:a"}  # back to the file's value


PLAIN = '''\
prepare:
  fn: mlops.pipelines.demand.prepare
  data: {start: "2024-01-01", days: 60, seed: 7, holdout_days: 7}
train:
  fn: mlops.pipelines.demand.train_linear
  alpha: 1e3
  layers: [1, 2.5, null, true, "x"]
  1: int key
evaluate:
  fn: mlops.pipelines.demand.evaluate
'''


@pytest.mark.parametrize("overrides", [
    [],
    ["pipelines.plain_a.train.alpha=0.5", "~pipelines.plain_b", "+pipelines.added.train.fn=a.b"],
    ["env=prod", "pipelines.plain_b.evaluate.fn=x.y"],
])
def test_sections_without_interpolation_resolve_to_what_omegaconf_makes_of_them(
        project: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str]) -> None:
    for name, text in (("plain_a", PLAIN.replace("  1: int key\n", "")), ("plain_b", PLAIN.replace("1e3", "2")),
                       ("plain_c", PLAIN)):
        (project / "conf/pipelines" / f"{name}.yaml").write_text(text)
    fast = compose(project, overrides)
    monkeypatch.setattr("mlops.config.compose.plain_sections", lambda *args: {})
    slow = compose(project, overrides)
    assert fast.values == slow.values
    assert list(fast.values["pipelines"]) == list(slow.values["pipelines"])
    assert json_text(fast.values) == json_text(slow.values)  # types too: 1e3 is a float, 2 an int


def json_text(values: dict) -> str:
    import json

    return json.dumps(values, sort_keys=False, default=repr)


def test_a_required_value_in_a_section_without_interpolation_is_still_required(project: Path) -> None:
    (project / "conf/pipelines/plain.yaml").write_text(PLAIN.replace("alpha: 1e3", "alpha: ???"))
    with pytest.raises(Exception, match=r"pipelines.plain.train.alpha.*required value"):
        compose(project)
