"""The bad-input corpus: inputs written the way careless and hostile users write them. Each must end
as one error line naming the file or key and the fix, exit code 2, and no pre-existing file changed
(`test_bad_inputs.py` runs them). A case is the command line, the files it finds, and words its
error line must hold."""

from __future__ import annotations

import pickle
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str
    files: dict[str, Any] = field(default_factory=dict)  # path -> text, bytes, or Artifact(name)


@dataclass(frozen=True)
class Artifact:
    """A file (or folder) built once per session by the test module: model.onnx, teacher.pt, baseline.json, run/."""

    name: str


@dataclass(frozen=True)
class Link:
    """A symbolic link to `target` (which need not exist)."""

    target: str


class Fifo:
    """A named pipe: exists, but is neither a file nor a folder."""


TEACHER = {"name": "teacher", "model": {"arch": "mlp", "hidden": [16]}, "epochs": 1}


def recipe(*stages: dict[str, Any], **top: Any) -> str:
    data = {"name": "bad", "task": {"name": "digits"}, "target": {"threads": 1}, **top}
    data["stages"] = list(stages) if stages else [{"train": TEACHER}]
    return yaml.safe_dump(data, sort_keys=False)


def train(**changes: Any) -> dict[str, Any]:
    return {"train": {**TEACHER, **changes}}


def student(**changes: Any) -> dict[str, Any]:
    return {"distill": {"model": {"arch": "mlp", "hidden": [8]}, "epochs": 1, **changes}}


class _Evil:
    def __reduce__(self):
        return (print, ("this code ran",))


USER = textwrap.dedent(
    """
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from compress.data import TaskData

    def _split(x, y):
        return TensorDataset(x, y)

    def task(n=60, features=6, ragged=False, test_features=None, label_max=2, nan_at=None):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, features, generator=g), torch.randint(0, label_max, (n,), generator=g)
        if nan_at is not None:
            x[nan_at, 2] = float("nan")
        test_x = torch.randn(20, test_features or features, generator=g)
        data = [_split(x[:40], y[:40]), _split(x[40:], y[40:]), _split(test_x, y[:20])]
        if ragged:
            data[0] = [(torch.randn(6 if i % 2 else 7), 0) for i in range(40)]
        return TaskData(*data, kind="classification", num_outputs=2, name="mine")

    class Pair(nn.Module):
        def __init__(self, in_shape, num_outputs, returns="tensor"):
            super().__init__()
            self.fc, self.returns = nn.Linear(in_shape[0], num_outputs), returns

        def forward(self, x):
            y = self.fc(x)
            return {"tuple": (y, y), "dict": {"logits": y}, "tensor": y}[self.returns]

    def model(in_shape, num_outputs, returns="tensor"):
        return Pair(in_shape, num_outputs, returns)

    def wide(in_shape, num_outputs):
        return nn.Linear(in_shape[0], num_outputs + 3)

    def not_a_model(in_shape, num_outputs):
        return "a model"

    def raising(**options):
        raise KeyError("column 'label' not found")

    def odd(kind):
        # data a user could hand over by mistake
        x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
        data = {
            "float-labels": TensorDataset(x, torch.rand(64)),
            "scalar-inputs": TensorDataset(torch.randn(64), y),
            "int-inputs": TensorDataset(torch.randint(0, 5, (64, 8)), y),
            "one-hot": TensorDataset(x, nn.functional.one_hot(y, 2)),
            "raises": Flaky(),
            "iterable": Stream(),
        }[kind]
        return TaskData(data, data, data, kind="classification", num_outputs=2, name="odd")

    def no_outputs():
        d = TensorDataset(torch.randn(64, 8), torch.zeros(64, dtype=torch.long))
        return TaskData(d, d, d, kind="classification", num_outputs=0, name="odd")

    class Flaky(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if i == 4:
                raise KeyError("row 4 is missing")
            return torch.randn(8), 1

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.randn(8), 1

    class Pooled(nn.Module):
        def __init__(self, in_shape, num_outputs):
            super().__init__()
            self.fc = nn.Linear(in_shape[0], num_outputs)

        def forward(self, x):
            return self.fc(x).mean(0, keepdim=True)

    class Indices(Pooled):
        def forward(self, x):
            return self.fc(x).argmax(1, keepdim=True).expand(-1, 2)

    NOT_CALLABLE = 3
    """
)
USER_TASK = {"task": {"factory": "badcode:task"}}
USER_MODEL = {"name": "teacher", "model": {"factory": "badcode:model"}, "epochs": 1}


def _user(*stages: dict[str, Any], task: dict[str, Any] | None = None) -> dict[str, Any]:
    top = {"task": task or {"factory": "badcode:task"}}
    return {"badcode.py": USER, "r.yaml": recipe(*(stages or [{"train": USER_MODEL}]), **top)}


def _run(*extra: str) -> tuple[str, ...]:
    return ("run", "r.yaml", "--out", "out", "--quiet", *extra)


RECIPE_FILE = [
    Case("recipe-missing", ("validate", "nope.yaml"), "recipe 'nope.yaml' does not exist"),
    Case("recipe-folder", ("run", "recipes"), "is a folder, not a recipe file", {"recipes/keep.txt": "mine"}),
    Case("recipe-binary", ("run", "r.yaml"), "is not a text file (not UTF-8)", {"r.yaml": bytes(range(256))}),
    Case("recipe-empty", ("validate", "r.yaml"), "a recipe is a mapping", {"r.yaml": ""}),
    Case("recipe-yaml-syntax", ("validate", "r.yaml"), "not valid YAML", {"r.yaml": "name: x\nstages: [train: {epochs: 3}\n"}),
    Case("recipe-tabs", ("validate", "r.yaml"), "not valid YAML", {"r.yaml": "name: x\n\tstages: []\n"}),
    Case("recipe-a-list", ("validate", "r.yaml"), "a recipe is a mapping", {"r.yaml": "- train: {}\n"}),
    Case("recipe-a-string", ("run", "r.yaml"), "a recipe is a mapping", {"r.yaml": "just some words\n"}),
    Case(
        "dup-top-key", ("validate", "r.yaml"), "duplicate key 'name' (first at line 1)", {"r.yaml": "name: a\nname: b\nstages: [train]\n"}
    ),
    Case(
        "dup-nested-key",
        ("run", "r.yaml"),
        ":4: duplicate key 'lr' (first at line 3)",
        {"r.yaml": "name: a\nstages:\n  - train: {model: {arch: mlp}, lr: 0.1,\n      lr: 1.0}\n"},
    ),
    Case("yaml-python-tag", ("validate", "r.yaml"), "not valid YAML", {"r.yaml": "name: !!python/object/apply:os.system ['echo hi']\n"}),
    Case(
        "yaml-alias-bomb",
        ("validate", "r.yaml"),
        "expands to more than 100,000 values",
        {
            "r.yaml": "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, k in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "name: x\n"
        },
    ),
    Case("unknown-top-key", ("validate", "r.yaml"), "did you mean 'stages'", {"r.yaml": recipe() + "stage: []\n"}),
    Case("no-stages", ("run", "r.yaml"), "stages", {"r.yaml": "name: a\ntask: {name: digits}\nstages: []\n"}),
    Case(
        "unknown-stage",
        ("validate", "r.yaml"),
        "unknown stage 'distil'; did you mean 'distill'",
        {"r.yaml": recipe(train(), {"distil": {}})},
    ),
    Case("stage-two-keys", ("validate", "r.yaml"), "write each stage as", {"r.yaml": recipe({"train": TEACHER, "export": {}})}),
    Case(
        "stage-key-typo",
        ("validate", "r.yaml"),
        "stages[0].train.epoch: unknown key; did you mean 'epochs'",
        {"r.yaml": recipe(train(epoch=3))},
    ),
]

NUMBERS = [
    Case("lr-inf", ("validate", "r.yaml"), "stages[0].train.lr", {"r.yaml": recipe(train(lr=float("inf")))}),
    Case("lr-nan", ("validate", "r.yaml"), "stages[0].train.lr", {"r.yaml": recipe(train(lr=float("nan")))}),
    Case("lr-negative", ("validate", "r.yaml"), "stages[0].train.lr", {"r.yaml": recipe(train(lr=-0.1))}),
    Case("lr-zero", ("validate", "r.yaml"), "stages[0].train.lr", {"r.yaml": recipe(train(lr=0))}),
    Case("lr-diverges", _run(), "train teacher: training diverged in epoch 1", {"r.yaml": recipe(train(lr=1e12))}),
    Case("lr-word", ("validate", "r.yaml"), "stages[0].train.lr", {"r.yaml": recipe(train(lr="fast"))}),
    Case("epochs-zero", ("validate", "r.yaml"), "stages[0].train.epochs", {"r.yaml": recipe(train(epochs=0))}),
    Case("epochs-negative", ("run", "r.yaml"), "stages[0].train.epochs", {"r.yaml": recipe(train(epochs=-3))}),
    Case("epochs-float", ("validate", "r.yaml"), "stages[0].train.epochs", {"r.yaml": recipe(train(epochs=2.5))}),
    Case("batch-size-zero", ("validate", "r.yaml"), "stages[0].train.batch_size", {"r.yaml": recipe(train(batch_size=0))}),
    Case("batch-size-absurd", ("validate", "r.yaml"), "stages[0].train.batch_size", {"r.yaml": recipe(train(batch_size=10**12))}),
    Case("patience-negative", ("validate", "r.yaml"), "stages[0].train.patience", {"r.yaml": recipe(train(patience=-1))}),
    Case("grad-clip-inf", ("validate", "r.yaml"), "stages[0].train.grad_clip", {"r.yaml": recipe(train(grad_clip=float("inf")))}),
    Case("temperature-zero", ("validate", "r.yaml"), "stages[1].distill.temperature", {"r.yaml": recipe(train(), student(temperature=0))}),
    Case(
        "alpha-above-one",
        ("validate", "r.yaml"),
        "stages[1].distill.alpha: alpha must stay within [0, 1], got 1.5",
        {"r.yaml": recipe(train(), student(alpha=1.5))},
    ),
    Case(
        "schedule-typo",
        ("validate", "r.yaml"),
        "stages[1].distill.temperature.kind: Input should be 'constant', 'linear', 'cosine', 'step' or 'adaptive' (got 'cosin')",
        {"r.yaml": recipe(train(), student(temperature={"kind": "cosin", "start": 8, "end": 1}))},
    ),
    Case(
        "schedule-missing-end",
        ("validate", "r.yaml"),
        "stages[1].distill.temperature",
        {"r.yaml": recipe(train(), student(temperature={"kind": "cosine", "start": 8}))},
    ),
    Case(
        "hidden-negative",
        ("validate", "r.yaml"),
        "hidden: give a list of whole numbers from 1 to 1048576, like [128, 64]; got [-4]",
        {"r.yaml": recipe(train(model={"arch": "mlp", "hidden": [-4]}))},
    ),
    Case(
        "unknown-arch",
        ("validate", "r.yaml"),
        "unknown model architecture 'resnet50'; did you mean 'resnet_cnn'",
        {"r.yaml": recipe(train(model={"arch": "resnet50"}))},
    ),
    Case(
        "seed-negative", ("run", "r.yaml", "--out", "out"), "seed: Input should be greater than or equal to 0", {"r.yaml": recipe(seed=-5)}
    ),
    Case("seed-huge", ("validate", "r.yaml"), "seed: Input should be less than or equal to", {"r.yaml": recipe(seed=10**20)}),
    Case(
        "threads-huge",
        ("run", "r.yaml", "--out", "out"),
        "target.threads: Input should be less than or equal to 4096",
        {"r.yaml": recipe(target={"threads": 99999999999})},
    ),
    Case("seed-true", ("validate", "r.yaml"), "seed: true is not a number", {"r.yaml": recipe(seed=True)}),
    Case("threads-true", ("validate", "r.yaml"), "threads: true is not a number", {"r.yaml": recipe(target={"threads": True})}),
    Case("epochs-true", ("validate", "r.yaml"), "stages[0].train: epochs: true is not a number", {"r.yaml": recipe(train(epochs=True))}),
    Case(
        "hidden-word",
        ("validate", "r.yaml"),
        "hidden: give a list of whole numbers",
        {"r.yaml": recipe(train(model={"arch": "mlp", "hidden": "16"}))},
    ),
    Case("hidden-fraction", ("validate", "r.yaml"), "got [16.5]", {"r.yaml": recipe(train(model={"arch": "mlp", "hidden": [16.5]}))}),
    Case(
        "hidden-overflow", ("validate", "r.yaml"), "from 1 to 1048576", {"r.yaml": recipe(train(model={"arch": "mlp", "hidden": [10**20]}))}
    ),
    Case("seed-word", ("validate", "r.yaml"), "seed", {"r.yaml": recipe(seed="abc")}),
    Case("threads-zero", ("validate", "r.yaml"), "target.threads", {"r.yaml": recipe(target={"threads": 0})}),
    Case(
        "prune-ratio-above-one",
        ("validate", "r.yaml"),
        "target",
        {"r.yaml": recipe(train(), {"prune": {"model": "teacher", "target": {"kind": "ratio", "value": 1.5}}})},
    ),
    Case(
        "prune-max-ratio",
        ("validate", "r.yaml"),
        "max_ratio",
        {"r.yaml": recipe(train(), {"prune": {"model": "teacher", "max_ratio": 1.2}})},
    ),
    Case(
        "benchmark-stage-batch-zero",
        ("validate", "r.yaml"),
        "batch_sizes",
        {"r.yaml": recipe(train(), {"export": {}}, {"benchmark": {"batch_sizes": [0]}})},
    ),
    Case(
        "benchmark-stage-batch-absurd",
        ("validate", "r.yaml"),
        "batch_sizes",
        {"r.yaml": recipe(train(), {"export": {}}, {"benchmark": {"batch_sizes": [2**40]}})},
    ),
    Case(
        "export-opset-future",
        ("validate", "r.yaml"),
        "opset 99: the legacy exporter writes opsets 13 to 20",
        {"r.yaml": recipe(train(), {"export": {"opset": 99}})},
    ),
    Case(
        "temperature-negative",
        ("validate", "r.yaml"),
        "temperature must be > 0, got -2",
        {"r.yaml": recipe(train(), student(temperature=-2))},
    ),
    Case("export-atol-nan", ("validate", "r.yaml"), "atol", {"r.yaml": recipe(train(), {"export": {"atol": float("nan")}})}),
    Case("quantize-mode", ("validate", "r.yaml"), "mode", {"r.yaml": recipe(train(), {"export": {}}, {"quantize": {"mode": "statik"}})}),
    Case(
        "calibration-samples-zero",
        ("validate", "r.yaml"),
        "samples",
        {"r.yaml": recipe(train(), {"export": {}}, {"quantize": {"calibration": {"samples": 0}}})},
    ),
]

NAMES_AND_ORDER = [
    Case("unknown-task", ("validate", "r.yaml"), "digit", {"r.yaml": recipe(task={"name": "digit"})}),
    Case("unknown-target", ("validate", "r.yaml"), "ort-cpus", {"r.yaml": recipe(target={"name": "ort-cpus"})}),
    Case("unavailable-target", ("run", "r.yaml", "--quiet"), "ort-cuda", {"r.yaml": recipe(target={"name": "ort-cuda"})}),
    Case("run-name-escapes", ("validate", "r.yaml"), "name", {"r.yaml": recipe(name="../../elsewhere")}),
    Case("unknown-env", ("validate", "r.yaml"), "CartPole-v9", {"r.yaml": recipe(task={"env": "CartPole-v9"})}),
    Case("unknown-cpu-kind", ("validate", "r.yaml"), "target.cpu", {"r.yaml": recipe(target={"cpu": "x86-avx9"})}),
    Case(
        "task-option-unknown",
        ("run", "r.yaml", "--quiet"),
        "built-in tasks take none",
        {"r.yaml": recipe(task={"name": "digits", "options": {"bogus": 1}})},
    ),
    Case(
        "calibration-file-missing",
        ("validate", "r.yaml"),
        "stages[2] (quantize): calibration file 'calib.npy' does not exist",
        {"r.yaml": recipe(train(), {"export": {}}, {"quantize": {"calibration": {"file": "calib.npy"}}})},
    ),
    Case(
        "calibration-file-missing-at-run",
        _run(),
        "calibration file 'calib.npy' does not exist",
        {"r.yaml": recipe(train(), {"export": {}}, {"quantize": {"calibration": {"file": "calib.npy"}}})},
    ),
    Case(
        "calibration-file-wrong-shape",
        _run(),
        "calibration file calib.npy has shape (4, 3)",
        {
            "r.yaml": recipe(train(), {"export": {}}, {"quantize": {"calibration": {"file": "calib.npy"}}}),
            "calib.npy": Artifact("calib-4x3.npy"),
        },
    ),
    Case("quantize-nothing-exported", ("validate", "r.yaml"), "quantize", {"r.yaml": recipe(train(), {"quantize": {}})}),
    Case("benchmark-nothing-exported", ("validate", "r.yaml"), "benchmark", {"r.yaml": recipe(train(), {"benchmark": {}})}),
    Case("export-nothing", ("validate", "r.yaml"), "export", {"r.yaml": recipe({"export": {}})}),
    Case("distill-no-teacher", ("validate", "r.yaml"), "teacher", {"r.yaml": recipe(student())}),
    Case(
        "distill-teacher-typo", ("validate", "r.yaml"), "did you mean 'teacher'", {"r.yaml": recipe(train(), student(teacher="teacher1"))}
    ),
    Case("prune-unknown-model", ("validate", "r.yaml"), "studnet", {"r.yaml": recipe(train(), {"prune": {"model": "studnet"}})}),
    Case("two-models-one-name", ("validate", "r.yaml"), "teacher", {"r.yaml": recipe(train(), train())}),
    Case("task-factory-missing", ("validate", "r.yaml"), "cannot import 'nosuch'", {"r.yaml": recipe(task={"factory": "nosuch:make"})}),
    Case("task-factory-no-colon", ("validate", "r.yaml"), "module:function", {"r.yaml": recipe(task={"factory": "badcode.task"})}),
    Case("task-factory-not-callable", ("validate", "r.yaml"), "NOT_CALLABLE", _user(task={"factory": "badcode:NOT_CALLABLE"})),
    Case(
        "model-factory-missing",
        ("validate", "r.yaml"),
        "make_modle",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:make_modle"}}}),
    ),
]

RUN_FOLDER = [
    Case("run-name-too-long", ("run", "r.yaml"), "name: String should have at most 64 characters", {"r.yaml": recipe(name="n" * 300)}),
    Case(
        "run-name-pattern", ("validate", "r.yaml"), "a name uses letters, digits, '_', '.' and '-' only", {"r.yaml": recipe(name="my run")}
    ),
    Case(
        "out-dangling-link", _run(), "run folder out is a broken symbolic link (to nowhere)", {"r.yaml": recipe(), "out": Link("nowhere")}
    ),
    Case("out-name-too-long", (*_run()[:3], "o" * 300, "--quiet"), "is longer than 255 bytes", {"r.yaml": recipe()}),
    Case("recipe-fifo", ("validate", "r.yaml"), "recipe 'r.yaml' is not a regular file", {"r.yaml": Fifo()}),
    Case("report-into-a-stage-folder", ("report", "out", "--out", "out/train"), "is inside the run folder out", {"out": Artifact("run")}),
    Case("report-into-the-run-folder", ("report", "out", "--out", "out"), "is inside the run folder out", {"out": Artifact("run")}),
    Case("out-is-a-file", _run(), "is a file, not a folder", {"r.yaml": recipe(), "out": "notes"}),
    Case(
        "out-under-a-file",
        (*_run()[:3], "notes/run", "--quiet"),
        "run folder notes/run: notes is a file, not a folder",
        {"r.yaml": recipe(), "notes": "notes"},
    ),
    Case("out-foreign-folder", _run(), "is not an edge-compress run folder", {"r.yaml": recipe(), "out/src/app.py": "print(1)"}),
    Case(
        "overwrite-foreign-manifest",
        _run("--overwrite"),
        "not an edge-compress manifest; nothing was deleted",
        {"r.yaml": recipe(), "out/manifest.json": '{"name": "web-app", "icons": []}', "out/src/app.py": "print(1)"},
    ),
    Case(
        "overwrite-run-with-foreign-file",
        _run("--overwrite"),
        "holds files edge-compress did not write: notes.txt",
        {"r.yaml": recipe(), "out": Artifact("run"), "out/notes.txt": "mine"},
    ),
    Case("existing-run", _run(), "already holds a run", {"r.yaml": recipe(), "out": Artifact("run")}),
    Case("resume-and-overwrite", _run("--resume", "--overwrite"), "not allowed with argument", {"r.yaml": recipe()}),
    Case("resume-garbage-manifest", _run("--resume"), "manifest", {"r.yaml": recipe(), "out/manifest.json": "\x00\x01garbage"}),
    Case("report-not-a-run", ("report", "somewhere"), "somewhere", {"somewhere/file.txt": "x"}),
    Case(
        "report-schema-word",
        ("report", "out"),
        "schema_version '2' is not a number",
        {"out/manifest.json": '{"schema_version": "2", "name": "x"}'},
    ),
    Case("report-manifest-newer", ("report", "out"), "upgrade edge-compress", {"out/manifest.json": '{"schema_version": 9, "name": "x"}'}),
    Case("report-missing", ("report", "nothing-here"), "nothing-here"),
    Case(
        "report-out-is-a-file",
        ("report", "out", "--out", "notes"),
        "report folder notes is a file, not a folder",
        {"out": Artifact("run"), "notes": "mine"},
    ),
    Case(
        "report-unknown-reference",
        ("report", "out", "--reference", "teachr"),
        "--reference 'teachr' is not a model of this run; did you mean 'teacher'",
        {"out": Artifact("run")},
    ),
]

CHECKPOINTS = [
    Case(
        "checkpoint-missing",
        _run(),
        "checkpoint 'teacher.pt' does not exist",
        {"r.yaml": recipe({"load": {"model": {"arch": "mlp", "hidden": [16], "checkpoint": "teacher.pt"}}})},
    ),
    Case(
        "compress-checkpoint-missing",
        ("compress", "--model", "mlp", "--checkpoint", "teacher.pt", "--task", "digits"),
        "--checkpoint 'teacher.pt' is not a file; give the path of your model's saved state dict",
    ),
    *[
        Case(
            f"checkpoint-{kind}",
            _run(),
            words,
            {"r.yaml": recipe({"load": {"model": {"arch": "mlp", "hidden": [16], "checkpoint": "teacher.pt"}}}), "teacher.pt": content},
        )
        for kind, content, words in (
            ("empty", b"", "the file is empty"),
            ("random-bytes", bytes(range(256)) * 8, "not a PyTorch checkpoint"),
            ("pickle-code", pickle.dumps(_Evil()), "not a PyTorch checkpoint"),
            ("text", "weights: 1 2 3\n", "not a PyTorch checkpoint"),
        )
    ],
    Case(  # teacher.pt holds an mlp with hidden [16]
        "checkpoint-other-architecture",
        _run(),
        "does not fit the model",
        {
            "r.yaml": recipe({"load": {"model": {"arch": "mlp", "hidden": [64], "checkpoint": "teacher.pt"}}}),
            "teacher.pt": Artifact("teacher.pt"),
        },
    ),
]

USER_CODE = [
    Case("task-factory-raises", _run(), "task factory 'badcode:raising' failed: KeyError", _user(task={"factory": "badcode:raising"})),
    Case(
        "task-factory-options",
        _run(),
        "unexpected keyword argument 'rows'",
        _user(task={"factory": "badcode:task", "options": {"rows": 5}}),
    ),
    Case(
        "ragged-samples",
        _run(),
        "edge-compress: error: task 'mine': the train split's sample 1 has shape (6,), sample 0 of train (7,)",
        _user(task={"factory": "badcode:task", "options": {"ragged": True}}),
    ),
    Case(
        "train-test-shapes-differ",
        _run(),
        "the test split's inputs have shape (9,), the train split's (6,)",
        _user(task={"factory": "badcode:task", "options": {"test_features": 9}}),
    ),
    Case("labels-out-of-range", _run(), "labels outside 0..1", _user(task={"factory": "badcode:task", "options": {"label_max": 5}})),
    Case(
        "nan-in-user-data",
        _run(),
        "the train split's inputs hold NaN or inf (1 samples, the first at index 13)",
        _user(task={"factory": "badcode:task", "options": {"nan_at": 13}}),
    ),
    Case(
        "nan-in-user-val-data",
        _run(),
        "the val split's inputs hold NaN",
        _user(task={"factory": "badcode:task", "options": {"nan_at": 45}}),
    ),
    *[
        Case(f"task-{kind}", _run(), words, _user(task={"factory": "badcode:odd", "options": {"kind": kind}}))
        for kind, words in (
            ("float-labels", "the train split's labels are torch.float32 of shape (64,)"),
            ("scalar-inputs", "has a scalar input (shape ())"),
            ("int-inputs", "has torch.int64 inputs; models take floating-point inputs"),
            ("one-hot", "labels are torch.int64 of shape (64, 2)"),
            ("raises", "reading sample 4 of the train split failed: KeyError"),
            ("iterable", "the train split has no length"),
        )
    ],
    Case("task-no-outputs", _run(), "num_outputs is 0", _user(task={"factory": "badcode:no_outputs"})),
    Case(
        "model-pools-the-batch",
        _run(),
        "returns 1 rows for a batch of 2",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:Pooled"}}}),
    ),
    Case(
        "model-returns-indices",
        _run(),
        "outputs torch.int64 values, not scores",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:Indices"}}}),
    ),
    Case(
        "model-returns-tuple", _run(), "tuple", _user({"train": {**USER_MODEL, "model": {"factory": "badcode:model", "returns": "tuple"}}})
    ),
    Case(
        "model-returns-dict",
        _run(),
        "returns a dict, not a tensor",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:model", "returns": "dict"}}}),
    ),
    Case(
        "model-wrong-outputs",
        _run(),
        "outputs shape (2, 5) but task 'mine' needs (2, 2)",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:wide"}}}),
    ),
    Case(
        "model-not-a-module", _run(), "not a torch.nn.Module", _user({"train": {**USER_MODEL, "model": {"factory": "badcode:not_a_model"}}})
    ),
    Case(
        "model-option-unknown",
        _run(),
        "unexpected keyword argument 'depth'",
        _user({"train": {**USER_MODEL, "model": {"factory": "badcode:model", "depth": 3}}}),
    ),
]


def _bench(id_: str, expect: str, *flags: str, **files: Any) -> Case:
    """`bench m.onnx` plus `flags`, m.onnx being the digits MLP, with these other files."""
    return Case(id_, ("bench", "m.onnx", *flags), expect, {"m.onnx": Artifact("model.onnx"), **files})


BENCH = [
    Case("bench-missing-file", ("bench", "model file nope.onnx does not exist"), "nope.onnx"),
    Case("bench-empty-onnx", ("bench", "m.onnx"), "m.onnx is not a readable ONNX model (the file is empty)", {"m.onnx": b""}),
    Case("bench-garbage-onnx", ("bench", "m.onnx"), "model file m.onnx is not a readable ONNX file", {"m.onnx": bytes(range(256)) * 4}),
    Case("bench-folder", ("bench", "models"), "model file models is a folder, not a model file", {"models/a.onnx": Artifact("model.onnx")}),
    Case(
        "bench-pt2-not-zip",
        ("bench", "m.pt2", "--target", "torch-cpu", "--input-shape", "1,8,8"),
        "not a torch.export archive",
        {"m.pt2": b"not a zip"},
    ),
    Case(
        "bench-zip-not-export",
        ("bench", "m.pt2", "--target", "torch-cpu", "--input-shape", "1,8,8"),
        "not a readable torch.export archive",
        {"m.pt2": Artifact("not-export.pt2")},
    ),
    _bench("bench-onnx-on-torch-target", "target 'torch-cpu' times a PyTorch module and 'm.onnx' is ONNX only", "--target", "torch-cpu"),
    _bench("bench-unknown-target", "--target: unknown benchmark target 'ort-gpu'", "--target", "ort-gpu"),
    _bench("bench-threads-zero", "--threads: Input should be greater than or equal to 1", "--threads", "0"),
    _bench("bench-batch-zero", "--batch-sizes: batch sizes must be between 1 and 65536", "--batch-sizes", "0"),
    _bench("bench-batch-absurd", "--batch-sizes: batch sizes must be between 1 and 65536", "--batch-sizes", str(2**40)),
    _bench("bench-rounds-zero", "--rounds: Input should be greater than or equal to 1", "--rounds", "0"),
    _bench("bench-min-time-inf", "--min-time: Input should be a finite number", "--min-time", "inf"),
    _bench("bench-input-shape-words", "--input-shape 'a,b' is not a list of integers", "--input-shape", "a,b"),
    _bench("bench-input-shape-wrong", "but --input-shape gives (3, 5)", "--input-shape", "3,5"),
    _bench("bench-unknown-task", "unknown task 'digitz'; did you mean 'digits'", "--task", "digitz"),
    _bench("bench-task-mismatch", "the task gives (10,)", "--task", "diabetes"),
    _bench(
        "bench-save-baseline-folder", "--save-baseline perf is a folder, not a file", "--save-baseline", "perf", **{"perf/old.json": "{}"}
    ),
    _bench(
        "bench-save-baseline-under-file",
        "--save-baseline notes/b.json: notes is a file, not a folder",
        "--save-baseline",
        "notes/b.json",
        notes="mine",
    ),
    _bench(
        "bench-baseline-over-a-recipe",
        "r.yaml exists and is not an earlier edge-compress-baseline file",
        "--save-baseline",
        "r.yaml",
        **{"r.yaml": recipe()},
    ),
    _bench(
        "bench-json-over-notes",
        "notes.json exists and is not an earlier edge-compress-measurement file",
        "--json",
        "notes.json",
        **{"notes.json": '{"todo": 1}'},
    ),
    *[
        Case(
            f"bench-onnx-{name}",
            ("bench", "m.onnx", "--task", "digits", "--rounds", "2", "--min-time", "0", "--warmup", "1"),
            words,
            {"m.onnx": Artifact(f"{name}.onnx")},
        )
        for name, words in (
            ("pools-the-batch", "m.onnx returns 1 rows for a batch of 256"),
            ("argmax", "m.onnx outputs int64 values, not scores"),
            ("nan", "m.onnx outputs NaN or inf on the test split"),
        )
    ],
    Case(
        "bench-onnx-fails-when-run",
        ("bench", "m.onnx", "--input-shape", "32", "--batch-sizes", "1"),
        "m.onnx fails on inputs of shape (1, 32)",
        {"m.onnx": Artifact("open-width.onnx")},
    ),
    Case(
        "bench-fixed-batch-timing",
        ("bench", "m.onnx", "--batch-sizes", "4"),
        "m.onnx is fixed at batch",
        {"m.onnx": Artifact("fixed-batch-1.onnx")},
    ),
    _bench("bench-json-folder", "--json perf is a folder, not a file", "--json", "perf", **{"perf/old.json": "{}"}),
]


def _regress(id_: str, expect: str, *flags: str, baseline: Any = Artifact("baseline.json"), **files: Any) -> Case:
    """`regress m.onnx --baseline b.json --max-slowdown 10%` plus `flags` (later ones win), with these files."""
    argv = ("regress", "m.onnx", "--baseline", "b.json", "--max-slowdown", "10%", *flags)
    found = {"m.onnx": Artifact("model.onnx"), **({"b.json": baseline} if baseline is not None else {}), **files}
    return Case(id_, argv, expect, {k: v for k, v in found.items() if v is not None})


REGRESS = [
    _regress("regress-missing-baseline", "baseline b.json does not exist", baseline=None),
    _regress("regress-empty-baseline", "baseline b.json is not valid JSON", baseline=""),
    _regress("regress-garbage-baseline", "baseline b.json is not valid JSON", baseline="[1, 2"),
    _regress("regress-other-json", "b.json is not an edge-compress baseline", baseline='{"name": "pkg"}'),
    _regress("regress-baseline-without-shape", "model.input_shape: Field required", baseline=Artifact("baseline-without-shape.json")),
    _regress("regress-slowdown-word", "--max-slowdown 'fast' is not a fraction", "--max-slowdown", "fast"),
    _regress("regress-slowdown-negative", "argument --max-slowdown", "--max-slowdown", "-5%"),
    _regress("regress-alpha-above-one", "argument --alpha: '2' is not between 0 and 1", "--alpha", "2"),
    _regress("regress-junit-folder", "--junit ci is a folder, not a file", "--junit", "ci", **{"ci/old.xml": "<x/>"}),
    Case(
        "regress-missing-model",
        ("regress", "new.onnx", "--baseline", "b.json", "--max-slowdown", "10%"),
        "model file new.onnx does not exist",
        {"b.json": Artifact("baseline.json")},
    ),
    Case(
        "regress-missing-reference",
        ("regress", "m.onnx", "--reference", "old.onnx", "--max-slowdown", "10%"),
        "model file old.onnx does not exist",
        {"m.onnx": Artifact("model.onnx")},
    ),
]

CASES = [*RECIPE_FILE, *NUMBERS, *NAMES_AND_ORDER, *RUN_FOLDER, *CHECKPOINTS, *USER_CODE, *BENCH, *REGRESS]
