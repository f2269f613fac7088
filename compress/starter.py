"""The starter recipe `edge-compress init` writes: the whole chain, commented, runnable as written on a
built-in task, with the lines to change for your own data and model."""

from __future__ import annotations

__all__ = ["starter_recipe"]

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
  # a small student learns from it (soft targets at temperature 4)
  - distill:
      teacher: teacher
      name: student
      model: {{arch: mobilenet_v2, width: 12, blocks: [1, 2], head_channels: 48}}   # or {{factory: "mymodels:make_student"}}
      epochs: 30
  # half its channels removed, fine-tuned by distillation after each step
  - prune:
      model: student
      target: {{kind: ratio, value: 0.5}}
      steps: 2
      finetune: {{epochs: 2, final_epochs: 10}}
  - export: {{}}         # ONNX, checked against PyTorch
  - quantize: {{}}       # INT8 for target.cpu, calibrated on the task's training samples
  - benchmark:
      batch_sizes: [1, 32]
  - report: {{}}
"""


def starter_recipe(name: str, file: str, *, task: str | None, teacher: str | None, checkpoint: str | None) -> str:
    """The starter recipe's text; `task` and `teacher` are `module:function` strings (or a built-in task name)."""
    if task is None or ":" not in task:
        task_text, note = f"{{name: {task or 'digits'}}}", f"on the built-in {task or 'digits'} task."
    else:
        task_text, note = f'{{factory: "{task}"}}', f"on your task {task}."
    if teacher:
        model = f'{{factory: "{teacher}"' + (f", checkpoint: {checkpoint}}}" if checkpoint else "}")
        stage = f"load: {{name: teacher, model: {model}}}" if checkpoint else f"train: {{name: teacher, model: {model}, epochs: 30}}"
    else:
        stage = "train: {name: teacher, model: {arch: resnet_cnn, width: 32, blocks: [2, 2]}, epochs: 30}"
    return TEMPLATE.format(name=name, file=file, task=task_text, task_note=note, teacher=stage)
