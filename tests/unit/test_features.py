import pytest
import torch

from compress.distill.features import FeatureTaps, Projector, match_spatial
from compress.errors import RecipeError
from compress.models import MODELS


def test_taps_record_named_outputs_and_remove_their_hooks():
    model = MODELS.get("resnet_cnn")(in_shape=(1, 8, 8), num_outputs=10, width=8)
    with FeatureTaps(model, ["layer1", "layer2.0.body"], "student") as taps:
        model(torch.randn(2, 1, 8, 8))
    assert taps.outputs["layer1"].shape == (2, 8, 8, 8) and taps.outputs["layer2.0.body"].shape == (2, 16, 4, 4)
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_layer_is_one_line_with_suggestions():
    model = MODELS.get("mlp")(in_shape=(10,), num_outputs=2)
    with pytest.raises(RecipeError) as err:
        FeatureTaps(model, ["layer3"], "teacher")
    message = str(err.value)
    assert "teacher model has no layer 'layer3'; did you mean" in message and "top-level layers: stem, layer1, layer2, head" in message
    assert "\n" not in message


def test_match_spatial_pools_the_larger_feature():
    s, t = match_spatial(torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4))
    assert s.shape == (2, 3, 4, 4) and t.shape == (2, 5, 4, 4)
    s, t = match_spatial(torch.randn(2, 3, 10), torch.randn(2, 5, 20))
    assert s.shape == (2, 3, 10) and t.shape == (2, 5, 10)


@pytest.mark.parametrize(("s_shape", "t_shape"), [((2, 4, 5, 5), (2, 16, 5, 5)), ((2, 4, 9), (2, 6, 9)), ((2, 4), (2, 12))])
@pytest.mark.parametrize("gate", [False, True])
def test_projector_maps_student_channels_to_teacher_channels(s_shape, t_shape, gate):
    projector = Projector(torch.Size(s_shape), torch.Size(t_shape), channel_attention=gate)
    assert projector(torch.randn(s_shape)).shape == t_shape
    assert (projector.gate is not None) == gate


def test_projector_refuses_incompatible_ranks():
    with pytest.raises(RecipeError, match=r"cannot match a student feature of shape \(2, 4\) to a teacher feature of shape \(2, 8, 3, 3\)"):
        Projector(torch.Size((2, 4)), torch.Size((2, 8, 3, 3)))
