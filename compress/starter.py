"""The whole-chain recipe template: `edge-compress compress` fills it in from flags, and `edge-compress init`
writes it out commented, runnable as written on a built-in task, with the lines to change for your own data
and model. Both come from `chain_recipe`, so the starter file is what the one-line command runs."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["chain_recipe", "starter_recipe", "student_for", "teacher_stage"]

# the digits demo's student shape for images and sequences; a small MLP for flat feature vectors
STUDENTS: dict[str, dict[str, Any]] = {
    "conv": {"arch": "mobilenet_v2", "width": 12, "blocks": [1, 2], "head_channels": 48},
    "vector": {"arch": "mlp", "hidden": [64, 32]},
}
ZOO_TEACHER = {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}
EPOCHS = 30
FINETUNE = {"epochs": 2, "final_epochs": 10}  # after each pruning step, and after the last


# smaller students of the same families, for small teachers (`student_for`)
LADDER: dict[str, list[dict[str, Any]]] = {
    "conv": [STUDENTS["conv"], *({"arch": "mobilenet_v2", "width": w, "blocks": [1, 2], "head_channels": 4 * w} for w in (8, 6, 4))],
    "vector": [STUDENTS["vector"], *({"arch": "mlp", "hidden": [h, h // 2]} for h in (32, 16, 8))],
}
SHRINK = 4  # the auto student has at most 1/SHRINK of the teacher's parameters when the ladder allows


def student_for(input_shape: tuple[int, ...], num_outputs: int | None = None, teacher_params: int | None = None) -> dict[str, Any]:
    """The template's student for inputs of this shape (one sample, no batch axis). Given the teacher's
    parameter count: the largest of the family's ladder with at most 1/SHRINK of them (the smallest when
    none is that small; distill warns if it is no smaller than the teacher)."""
    ladder = LADDER["vector" if len(input_shape) == 1 else "conv"]
    if teacher_params is None or num_outputs is None:
        return dict(ladder[0])
    from compress.models.zoo import MODELS

    def size(entry: dict[str, Any]) -> int:
        kwargs = {k: v for k, v in entry.items() if k != "arch"}
        return sum(p.numel() for p in MODELS.get(entry["arch"])(input_shape, num_outputs, **kwargs).parameters())

    fitting = [entry for entry in ladder if size(entry) * SHRINK <= teacher_params]
    return dict(fitting[0] if fitting else ladder[-1])


def task_entry(task: str | None) -> dict[str, str]:
    """A recipe's `task`: a built-in task's name, or `module:function`."""
    task = task or "digits"
    return {"factory": task} if ":" in task else {"name": task}


def model_entry(model: str) -> dict[str, Any]:
    """A recipe's `model` from one string: `module:function`, or a zoo arch with its defaults."""
    return {"factory": model} if ":" in model else {"arch": model}


def teacher_stage(teacher: str | None, checkpoint: str | None, *, epochs: int = EPOCHS) -> dict[str, Any]:
    """Your trained teacher loaded, or trained here first (a zoo residual CNN when none is given)."""
    model = model_entry(teacher) if teacher else dict(ZOO_TEACHER)
    if checkpoint:
        return {"load": {"name": "teacher", "model": {**model, "checkpoint": checkpoint}}}
    return {"train": {"name": "teacher", "model": model, "epochs": epochs}}


def chain_recipe(
    name: str,
    *,
    task: str | None = None,
    teacher: str | None = None,
    checkpoint: str | None = None,
    student: dict[str, Any] | None = None,
    epochs: int = EPOCHS,
    prune: float = 0.5,
    int8: bool = True,
    target: dict[str, Any] | None = None,
    regression: bool = False,
) -> dict[str, Any]:
    """teacher -> distilled student -> pruned (distillation fine-tuning) -> ONNX -> INT8 -> benchmark -> report.
    `prune=0` leaves pruning out, `int8=False` the INT8 step; `regression` distills with mse (soft targets
    need classes)."""
    loss = {"loss": "mse"} if regression else {}
    distill = {"teacher": "teacher", "name": "student", "model": student or dict(STUDENTS["conv"]), "epochs": epochs, **loss}
    stages: list[dict[str, Any]] = [teacher_stage(teacher, checkpoint, epochs=epochs), {"distill": distill}]
    if prune:
        finetune = {**FINETUNE, **loss}
        stages.append({"prune": {"model": "student", "target": {"kind": "ratio", "value": prune}, "steps": 2, "finetune": finetune}})
    final = "student_pruned" if prune else "student"  # the model to ship; INT8 of the others is not asked for
    stages += [{"export": {}}, *([{"quantize": {"models": [final]}}] if int8 else []), {"benchmark": {"batch_sizes": [1, 32]}}]
    stages.append({"report": {}})
    return {"name": name, "seed": 0, "task": task_entry(task), "target": target or {"name": "ort-cpu", "cpu": "auto"}, "stages": stages}


TEMPLATE = """\
# A starter recipe (edge-compress init). It runs as written: {task_note}
# Check it with `edge-compress validate {file}`, run it with `edge-compress run {file}`;
# every stage and key: `edge-compress stages`; the JSON Schema for your editor: `edge-compress schema recipe`.
name: {name}
seed: 0
task: {task}
#   your own data: {{factory: "mydata:make_task", options: {{root: data/}}}}
#   (a function returning compress.data.TaskData(train, val, test, kind=..., num_outputs=N))
target:
  name: ort-cpu          # or openvino-cpu, ort-cuda, torch-cpu
  cpu: auto              # the CPU the model will run on: auto (this one), x86-avx2, x86-avx512, x86-vnni, arm64
stages:
  # the teacher: trained here, or your trained model:
  #   - load: {{name: teacher, model: {{factory: "mymodels:make_teacher", checkpoint: teacher.pt}}}}
  - {teacher}
  # a small student learns from it (soft targets)
  - distill:
      teacher: teacher
      name: student
      model: {student}   # or {{factory: "mymodels:make_student"}}
      epochs: {epochs}
  # half its channels removed, fine-tuned by distillation after each step
  - prune:
      model: student
      target: {{kind: ratio, value: 0.5}}
      steps: 2
      finetune: {finetune}
  - export: {{}}         # ONNX, checked against PyTorch
  - quantize: {{models: [student_pruned]}}   # INT8 for target.cpu, calibrated on the task's training samples
  - benchmark:
      batch_sizes: [1, 32]
  - report: {{}}
"""


def starter_recipe(name: str, file: str, *, task: str | None, teacher: str | None, checkpoint: str | None) -> str:
    """The commented text of `chain_recipe(name, task=..., teacher=..., checkpoint=...)`; `task` and
    `teacher` are `module:function` strings (or a built-in task name / zoo arch)."""
    where = task or "digits"
    note = f"on your task {where}." if ":" in where else f"on the built-in {where} task."
    return TEMPLATE.format(
        name=name,
        file=file,
        task=_flow(task_entry(task)),
        task_note=note,
        teacher=_flow(teacher_stage(teacher, checkpoint)),
        student=_flow(STUDENTS["conv"]),
        epochs=EPOCHS,
        finetune=_flow(FINETUNE),
    )


def _flow(value: Any) -> str:
    """One YAML line: `{arch: mobilenet_v2, width: 12, blocks: [1, 2]}`."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16).strip()
