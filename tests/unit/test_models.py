import pytest
import torch
from torch import nn

from compress.data.builtin import TASKS
from compress.errors import DataError, ModelError
from compress.models import MODELS, ModelSpec, build_model, save_checkpoint

SHAPES = {"image": (1, 8, 8), "signal": (1, 40), "table": (10,)}
FAMILIES = {
    "resnet_cnn": ("image", "signal"),
    "mobilenet_v2": ("image", "signal"),
    "cnn1d": ("signal",),
    "mlp": ("image", "signal", "table"),
    "transformer": ("image", "signal"),
}


def test_every_zoo_model_is_covered_here():
    assert set(FAMILIES) == set(MODELS)


@pytest.mark.parametrize(("arch", "kind"), [(a, k) for a, ks in FAMILIES.items() for k in ks])
def test_zoo_model_maps_inputs_to_outputs_and_trains(arch, kind):
    model = MODELS.get(arch)(in_shape=SHAPES[kind], num_outputs=7)
    x = torch.randn(3, *SHAPES[kind])
    out = model(x)
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_model_width_scales_parameters():
    small = MODELS.get("mobilenet_v2")(in_shape=(1, 8, 8), num_outputs=10, width=8)
    large = MODELS.get("mobilenet_v2")(in_shape=(1, 8, 8), num_outputs=10, width=16)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(large) > 2 * count(small)


def test_spec_rejects_unknown_arch_and_argument():
    with pytest.raises(ValueError, match="did you mean 'mlp'"):
        ModelSpec(arch="mpl")
    with pytest.raises(ValueError, match="unknown argument 'widht' for arch 'resnet_cnn'; valid: width, blocks"):
        ModelSpec(arch="resnet_cnn", widht=3)
    with pytest.raises(ValueError, match="exactly one"):
        ModelSpec(arch="mlp", factory="pkg:fn")


def test_conv_model_on_table_data_is_a_one_line_error():
    task = TASKS.get("diabetes")()
    with pytest.raises(ModelError, match="cannot build model 'resnet_cnn'.*channels, length") as err:
        build_model(ModelSpec(arch="resnet_cnn"), task)
    assert "\n" not in str(err.value)


def test_factory_model_with_wrong_input_size_names_the_shapes(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text("from torch import nn\ndef make():\n    return nn.Linear(10, 10)\n")
    monkeypatch.chdir(tmp_path)
    task = TASKS.get("digits")()
    with pytest.raises(DataError, match=r"cannot take task 'digits' samples of shape \(1, 8, 8\) \(tried a batch of 2\)") as err:
        build_model(ModelSpec(factory="usermodels:make"), task)
    assert "\n" not in str(err.value)


def test_wrong_number_of_outputs_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "threeway.py").write_text("from torch import nn\ndef make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"outputs shape \(2, 3\) but task 'digits' needs \(2, 10\)"):
        build_model(ModelSpec(factory="threeway:make"), TASKS.get("digits")())


def test_checkpoint_round_trip_and_errors(tmp_path):
    task = TASKS.get("digits")()
    model = build_model(ModelSpec(arch="mlp", hidden=[16]), task)
    path = tmp_path / "m.pt"
    save_checkpoint(model, path)
    loaded = build_model(ModelSpec(arch="mlp", hidden=[16], checkpoint=str(path)), task)
    x = task.example_input(4)
    assert torch.equal(model.eval()(x), loaded.eval()(x))
    with pytest.raises(ModelError, match=r"does not fit the model: size mismatch for layer1.0.weight"):
        build_model(ModelSpec(arch="mlp", hidden=[32], checkpoint=str(path)), task)
    with pytest.raises(ModelError, match="does not exist"):
        build_model(ModelSpec(arch="mlp", checkpoint=str(tmp_path / "missing.pt")), task)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read checkpoint .*: not a PyTorch checkpoint"):
        build_model(ModelSpec(arch="mlp", checkpoint=str(tmp_path / "bad.pt")), task)
    (tmp_path / "empty.pt").write_bytes(b"")  # the message handler itself used to crash on torch's empty EOFError
    with pytest.raises(ModelError, match="cannot read checkpoint .*: the file is empty; save the model's weights"):
        build_model(ModelSpec(arch="mlp", checkpoint=str(tmp_path / "empty.pt")), task)
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")  # a training loop's checkpoint
    with pytest.raises(ModelError, match=r"holds the weights under 'model' \(its top-level keys: 'model', 'epoch'\)") as err:
        build_model(ModelSpec(arch="mlp", hidden=[16], checkpoint=str(tmp_path / "wrapped.pt")), task)
    assert "torch.save(checkpoint['model'], path)" in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": nn.Linear(2, 2)}, path)  # a module object: needs unpickling code
    task = TASKS.get("digits")()
    with pytest.raises(ModelError) as err:
        build_model(ModelSpec(arch="mlp", checkpoint=str(path)), task)
    assert "holds more than tensors (loading it would run code from the file" in str(err.value)
    assert "weights_only=False" not in str(err.value), "never advise loading it unsafely"


def test_transformer_heads_must_divide_its_width():
    with pytest.raises(ModelError, match="dim 30 must be a multiple of heads 4"):
        build_model(ModelSpec(arch="transformer", dim=30, heads=4), TASKS.get("digits")())


def test_pruned_checkpoint_for_another_architecture_is_a_one_line_error(tmp_path):
    digits = TASKS.get("digits")()
    pruned = build_model(ModelSpec(arch="mlp", hidden=[8]), digits)
    save_checkpoint(pruned, tmp_path / "p.pt", structure=True)
    with pytest.raises(ModelError) as err:
        build_model(ModelSpec(arch="cnn1d", checkpoint=str(tmp_path / "p.pt")), TASKS.get("mnist1d")())
    assert (
        "pruned checkpoint describes module 'layer1.0' with ['in_features', 'out_features'], but the model's 'layer1.0' is a Conv1d"
        in str(err.value)
    )
    assert "\n" not in str(err.value)


def test_an_exception_without_a_message_still_gives_a_line():
    from compress.errors import first_line

    assert first_line(EOFError()) == "EOFError" and first_line(ValueError("\n  two\nlines")) == "two"
