"""The sweep grammar: value lists, distributions, grids and seeded random trials (no processes)."""

from __future__ import annotations

import pytest

from workbench.runs.sweep_spec import (
    Choice,
    Distribution,
    SweepSpecError,
    Values,
    check_unique,
    grid_size,
    grid_trials,
    param_from_toml,
    parse_param,
    random_trials,
    split_items,
    trial_overrides,
)


def values(text: str) -> list:
    param = parse_param(text)
    assert isinstance(param, Values)
    return [item.value for item in param.items]


def test_values_are_toml_literals_split_at_top_level_commas() -> None:
    assert values("lr=1e-4,1e-3, 1e-2") == [1e-4, 1e-3, 1e-2]
    assert values("layers=[64,64],[32]") == [[64, 64], [32]]
    assert values('opt="adam,w",sgd') == ["adam,w", "sgd"]  # a quoted comma does not split
    assert values("flag=true,false") == [True, False]
    assert values("t={a = 1, b = 2},{a = 3}") == [{"a": 1, "b": 2}, {"a": 3}]
    assert values("name=foo") == ["foo"]  # not TOML: the text as typed, like -s


def test_item_text_goes_to_the_override_as_typed() -> None:
    param = parse_param("layers=[64,64],[32]")
    trials = list(grid_trials([param]))
    assert [trial_overrides(t) for t in trials] == [["layers=[64,64]"], ["layers=[32]"]]


def test_split_items_names_unbalanced_text() -> None:
    assert split_items("a,'b,c',(d,e)") == ["a", "'b,c'", "(d,e)"]
    for text, what in [("[1,2", "not closed"), ("1],2", "closes nothing"), ('"abc', "quote is not closed")]:
        with pytest.raises(SweepSpecError, match=what):
            parse_param(f"x={text}")


def test_distributions() -> None:
    assert parse_param("lr=loguniform(1e-5, 1e-1)") == Distribution("lr", "loguniform", 1e-5, 1e-1)
    assert parse_param("d=uniform(0,0.5)") == Distribution("d", "uniform", 0, 0.5)
    assert parse_param("e=intuniform(1,5)") == Distribution("e", "intuniform", 1, 5)
    choice = parse_param("h=choice(32, 64, 128)")
    assert isinstance(choice, Choice) and [i.value for i in choice.items] == [32, 64, 128]


@pytest.mark.parametrize("text, message", [
    ("lr=1e-3,,1e-2", "item 2 is empty"),
    ("lr=", "has no values"),
    ("=1", "expected KEY="),
    ("lr", "expected KEY="),
    ("l r=1", "not a config key"),
    ("lr=loguniform(0, 1)", "bounds above 0"),
    ("lr=loguniform(-1, 1)", "bounds above 0"),
    ("lr=uniform(1, 1)", "LOW must be below HIGH"),
    ("lr=uniform(2, 1)", "LOW must be below HIGH"),
    ("lr=uniform(a, 1)", "'a' is not a number"),
    ("lr=uniform(1)", "takes two bounds"),
    ("e=intuniform(1.5, 3)", "not an integer"),
    ("lr=gauss(0, 1)", "unknown distribution 'gauss'"),
    ("lr=uniform(true, 2)", "not a number"),
    ("lr=uniform(0, inf)", "finite"),
])
def test_bad_parameters_are_one_line(text: str, message: str) -> None:
    with pytest.raises(SweepSpecError, match=message) as info:
        parse_param(text)
    assert "\n" not in str(info.value)


def test_grid_is_the_product_first_key_slowest() -> None:
    params = [parse_param("a=1,2"), parse_param("b=x,y,z")]
    assert grid_size(params) == 6
    trials = [{k: i.value for k, i in t.items()} for t in grid_trials(params)]
    assert trials[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert trials[3] == {"a": 2, "b": "x"}


def test_a_grid_refuses_a_continuous_distribution() -> None:
    with pytest.raises(SweepSpecError, match="--random N"):
        grid_size([parse_param("lr=loguniform(1e-5, 1e-1)")])


def test_random_trials_repeat_with_the_seed_and_stay_in_bounds() -> None:
    params = [parse_param("lr=loguniform(1e-5,1e-1)"), parse_param("h=choice(32,64)"),
              parse_param("e=intuniform(1,3)"), parse_param("d=uniform(0,0.5)"), parse_param("opt=adam,sgd")]
    a, b = random_trials(params, 50, seed=7), random_trials(params, 50, seed=7)
    assert a == b
    assert a != random_trials(params, 50, seed=8)
    for trial in a:
        assert 1e-5 <= trial["lr"].value <= 1e-1
        assert trial["h"].value in (32, 64) and trial["opt"].value in ("adam", "sgd")
        assert trial["e"].value in (1, 2, 3) and isinstance(trial["e"].value, int)
        assert 0 <= trial["d"].value <= 0.5
        # the override text reads back as the same value
        assert values(trial_overrides({"lr": trial["lr"]})[0]) == [trial["lr"].value]
    assert {t["e"].value for t in a} == {1, 2, 3}


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(SweepSpecError, match="given twice"):
        check_unique([parse_param("lr=1,2"), parse_param("lr=3")])


def test_sweep_file_values() -> None:
    assert param_from_toml("lr", [1e-3, 1e-2]) == parse_param("lr=0.001,0.01")
    assert [i.text for i in param_from_toml("layers", [[64, 64], [32]]).items] == ["[64, 64]", "[32]"]
    assert param_from_toml("lr", "loguniform(1e-5, 1e-1)") == Distribution("lr", "loguniform", 1e-5, 1e-1)
    assert [i.value for i in param_from_toml("act", "relu").items] == ["relu"]
    assert [i.value for i in param_from_toml("act", "f(1)").items] == ["f(1)"]  # not a distribution name
    with pytest.raises(SweepSpecError, match="empty array"):
        param_from_toml("lr", [])


@pytest.mark.parametrize("value", [1, -2, 1e-5, 0.1, True, "a,b \"q\"", [64, 64], [[1], []], {"a": 1, "b": [2.5]}])
def test_toml_text_reads_back(value: object) -> None:
    from workbench.runs.sweep_spec import toml_text

    text = toml_text(value)
    assert "\n" not in text
    assert values(f"k={text}") == [value]
