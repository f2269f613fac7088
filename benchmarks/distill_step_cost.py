"""Cost of a distillation training step relative to a plain student step, with and without the
teacher-output cache. Epochs of the three variants are interleaved round by round, so drift in the
machine's speed affects all three alike; the table gives medians over rounds.

    python benchmarks/distill_step_cost.py --task mnist1d --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import save

from compress.data.builtin import TASKS
from compress.distill.losses import task_loss
from compress.distill.objective import DistillObjective
from compress.distill.trainer import TaskLoss, _Step, _train_epoch
from compress.models import ModelSpec, build_model
from compress.stages.distill import DistillConfig

MODELS = {
    "mnist1d": ({"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}, {"arch": "cnn1d", "width": 22, "depth": 3, "kernel": 5}),
    "digits": (
        {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]},
        {"arch": "mobilenet_v2", "width": 12, "blocks": [1, 2], "head_channels": 48},
    ),
}


def variant(name: str, task, teacher, student_spec: dict, batch_size: int):
    student = build_model(ModelSpec(**student_spec), task)
    if name == "plain":
        loss, train = TaskLoss(lambda m, x, y: task_loss(m(x), y, task.kind)), task.train
    else:
        cfg = DistillConfig(model=student_spec)
        loss = DistillObjective(student, [teacher], cfg.objective(), kind=task.kind, example=task.example_input(2))
        loss.cache_enabled = name == "kd cached"
        train = loss.wrap_train(task.train)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step = _Step(student, loss)
    return lambda: _train_epoch(student, step, loader, optimizer, schedule, None, None, loss), len(loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(MODELS), default="mnist1d")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    task = TASKS.get(args.task)()
    teacher_spec, student_spec = MODELS[args.task]
    teacher = build_model(ModelSpec(**teacher_spec), task).eval().requires_grad_(False)
    names = ["plain", "kd uncached", "kd cached"]
    runs = {n: variant(n, task, teacher, student_spec, args.batch_size) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds + 1):  # the first round warms up and is dropped
        for n in names:
            t0 = time.perf_counter()
            runs[n][0]()
            times[n].append(time.perf_counter() - t0)
    steps = runs["plain"][1]
    per_step = {n: [t / steps * 1e3 for t in ts[1:]] for n, ts in times.items()}
    base = statistics.median(per_step["plain"])
    rows = [
        [n, f"{statistics.median(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}", f"{statistics.median(v) / base:.2f}x"]
        for n, v in per_step.items()
    ]
    header = ["variant", "median ms/step", "min", "max", "vs plain"]
    notes = (
        f"Task {args.task}, batch {args.batch_size}, {steps} steps per epoch, {args.rounds} interleaved rounds after one warm-up round, "
        f"torch threads {torch.get_num_threads()}, no augmentation (caching needs unchanging inputs). 'kd cached' computes the teacher's outputs once per training sample "
        "(its one-off cost is not in the per-step figure)."
    )
    md = save(f"distill_step_cost_{args.task}", "Distillation step cost", header, rows, {"per_step_ms": per_step, "steps": steps}, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
