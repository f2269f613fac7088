"""Manifest.load on a path that is not there: a one-line error saying what to give, not advice to resume."""

import pytest

from compress import Manifest
from compress.errors import ArtifactError


@pytest.mark.parametrize("given", ["nope", "nope/manifest.json"])
def test_a_missing_run_is_named_with_what_to_give(tmp_path, given):
    with pytest.raises(ArtifactError) as err:
        Manifest.load(tmp_path / given)
    message = str(err.value)
    assert message.endswith(f"{given}: no such file; give a run folder or its manifest.json (the run's --out)")
    assert "--resume" not in message
