import pytest

from compress.errors import RecipeError
from compress.registry import Registry


def test_duplicate_name_is_an_error():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(2)


def test_unknown_name_suggests_close_matches_and_lists_known():
    reg: Registry[int] = Registry("stage")
    for name in ("distill", "export", "train"):
        reg.register(name)(0)
    with pytest.raises(RecipeError) as err:
        reg.get("distil")
    message = str(err.value)
    assert "unknown stage 'distil'" in message
    assert "did you mean 'distill'" in message
    assert "known: distill, export, train" in message


def test_registered_objects_come_back_and_list_sorted():
    reg: Registry[str] = Registry("thing")
    reg.register("b")("B")
    reg.register("a")("A")
    assert reg.get("b") == "B"
    assert list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg


def test_check_is_for_config_validators():
    reg: Registry[int] = Registry("loss")
    reg.register("kd")(0)
    assert reg.check("kd") == "kd"
    with pytest.raises(ValueError, match="unknown loss 'kdd'; did you mean 'kd'"):
        reg.check("kdd")
