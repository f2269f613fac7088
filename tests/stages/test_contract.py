"""Contract tests driven by the stage registry: every stage, present and future."""

import pytest
from pydantic import ValidationError

from compress.stages import STAGES, Stage

MINIMAL = {
    "train": {"model": {"arch": "mlp"}},
    "load": {"model": {"arch": "mlp", "checkpoint": "t.pt"}},
    "distill": {"model": {"arch": "mlp"}},
}


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_contract(name):
    cls = STAGES.get(name)
    assert issubclass(cls, Stage) and cls.name == name
    assert cls.__doc__ and cls.__doc__.strip(), "stages document themselves for `edge-compress stages`"
    assert cls.Config.model_config.get("extra") == "forbid"
    stage = cls(**MINIMAL.get(name, {}))
    assert type(stage.cfg).model_validate_json(stage.cfg.model_dump_json()) == stage.cfg
    with pytest.raises(ValidationError):
        cls(**MINIMAL.get(name, {}), no_such_key=1)
    for field in cls.Config.model_fields.values():
        assert field.description, f"{name}: every config key has a description"


def test_stage_takes_config_object_or_keywords_not_both():
    cls = STAGES.get("report")
    assert cls(cls.Config(title="x")).cfg.title == "x"
    with pytest.raises(TypeError):
        cls(cls.Config(), title="y")
    with pytest.raises(TypeError, match="needs a ReportConfig"):
        cls(STAGES.get("export").Config())
