"""PyTorch targets: eager and `torch.compile`, on the CPU and on CUDA. CUDA calls are timed with CUDA
events after synchronizing, not with the host clock; peak allocated device memory is reported."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compress.bench.runners import RUNNERS, Loaded, ModelSource, TargetSpec, need_module
from compress.errors import TargetError

__all__ = ["TorchCpuRunner", "TorchCompileRunner", "TorchCudaRunner", "TorchCudaCompileRunner", "load_pt2"]


def load_pt2(path: Path) -> Callable[[], Any]:
    """A module factory for a `torch.export.save` archive (.pt2); a file that is not one is refused now."""
    import zipfile

    from compress.errors import ArtifactError

    fix = "save it with torch.export.save(torch.export.export(model, (example,)), path)"
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path} is not a torch.export archive (.pt2 files are zip archives)", fix=fix)

    def build():
        import torch

        try:
            return torch.export.load(str(path)).module()
        except Exception as err:  # torch raises several types for archives it cannot read
            raise ArtifactError(f"{path} is not a readable torch.export archive ({type(err).__name__})", fix=fix) from None

    return build


def cuda_event_clock(call: Callable[[], Any]) -> int:
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    call()
    end.record()
    end.synchronize()
    return int(start.elapsed_time(end) * 1e6)


class _TorchLoaded(Loaded):
    def __init__(self, module, device: str) -> None:
        import torch

        self.module, self.device = module, device
        if device == "cuda":
            self.clock = cuda_event_clock

        def predict(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x).to(device)).float().cpu().numpy()

        super().__init__(predict)

    def prepare(self, x: np.ndarray) -> Callable[[], Any]:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

        def call():
            with torch.inference_mode():
                return self.module(tensor)

        return call

    def reset_device_peak(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def device_peak_bytes(self) -> int | None:
        if self.device != "cuda":
            return None
        import torch

        return int(torch.cuda.max_memory_allocated())


class TorchCpuRunner:
    """PyTorch eager mode on the CPU (`torch.set_num_threads` to the target's thread count)."""

    target = "torch-cpu"
    device = "cpu"
    compiled = False

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.threads = spec.num_threads

    @classmethod
    def check(cls) -> None:
        if cls.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise TargetError(f"target {cls.target!r} needs a CUDA GPU and a CUDA build of torch; torch sees no GPU here")

    def load(self, model: str | Path | ModelSource) -> Loaded:
        import torch

        source = ModelSource.of(model)
        if source.module is None and source.onnx is not None and source.onnx.suffix == ".pt2":
            source = ModelSource(label=source.label, module=load_pt2(source.onnx))
        torch.set_num_threads(self.threads)
        module = need_module(self.target, source)().to(self.device)
        with contextlib.suppress(NotImplementedError):  # a torch.export module keeps the mode it was exported in
            module.eval()
        if self.compiled:
            module = torch.compile(module)
        return _TorchLoaded(module, self.device)

    def describe(self) -> dict[str, Any]:
        import torch

        info = {
            "target": self.target,
            "runtime": f"torch {torch.__version__}",
            "provider": f"{'torch.compile' if self.compiled else 'eager'} on {self.device}",
            "threads": self.threads,
        }
        if self.device == "cuda":
            info["gpu"] = torch.cuda.get_device_name()
            info["clock"] = "CUDA events"
        return info


@RUNNERS.register("torch-compile")
class TorchCompileRunner(TorchCpuRunner):
    """`torch.compile` (inductor) on the CPU; compilation happens during warm-up, not while timed."""

    target = "torch-compile"
    compiled = True
    reload_ok = False


@RUNNERS.register("torch-cuda")
class TorchCudaRunner(TorchCpuRunner):
    """PyTorch eager mode on CUDA, timed with CUDA events."""

    target = "torch-cuda"
    device = "cuda"


@RUNNERS.register("torch-cuda-compile")
class TorchCudaCompileRunner(TorchCudaRunner):
    """`torch.compile` on CUDA, timed with CUDA events."""

    target = "torch-cuda-compile"
    compiled = True
    reload_ok = False


RUNNERS.register("torch-cpu")(TorchCpuRunner)
