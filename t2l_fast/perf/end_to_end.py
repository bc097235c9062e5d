"""End-to-end throughput (`t2l bench throughput --end-to-end`): the video loader (decode + evaluation augment) feeding
a model backend, against each stage alone, to say which stage limits. Runs on a folder of videos with a val.txt
list (default: the synthetic dataset, written once)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .isolation import run_isolated, worker_main


def _clips_per_second(batches, backend=None) -> float:
    """Clips/s of iterating `batches`, each fed to `backend` as it takes them (a CUDA batch stays on the GPU for a
    torch backend; ONNX Runtime, OpenVINO and TensorRT take host arrays)."""
    started, clips = time.perf_counter(), 0
    for batch in batches:
        if backend:
            backend.run(backend.feed(batch["video"]))
        clips += batch["video"].shape[0]
    return clips / (time.perf_counter() - started)


def measure_end_to_end(spec: dict) -> list[dict]:
    """One model and backend over one loader backend (the subprocess side): loader alone, model alone on the
    loader's batches held in memory, and the two together; after a warm-up epoch."""
    from ..data import LoaderConfig, build_video_loader
    from ..models.registry import create_model
    from .backends import build_backend
    from .throughput import clips_for

    torch.manual_seed(0)
    model = create_model(spec["model"]).eval()
    c = model.config
    data = Path(spec["data"])
    loading = LoaderConfig(frames=c.frames, size=c.vision.image_size, backend=spec["loader"],
                           num_workers=spec["workers"])
    loader = build_video_loader(data / "val.txt", data, loading, split="val", batch_size=spec["batch"])
    calibration = clips_for(c.vision.image_size, c.frames, 8)
    backend = build_backend(spec["backend"], model, Path(spec["work_dir"]), calibration, max_batch=spec["batch"])
    held = list(loader)  # warm-up epoch: page cache, workers; its batches feed the model-alone measurement
    loader_rate = _clips_per_second(loader)
    model_rate = _clips_per_second(held, backend)
    together = _clips_per_second(loader, backend)
    limit = "loader" if loader_rate < model_rate else "model"
    return [{"model": spec["model"], "frames": c.frames, "batch": spec["batch"], "backend": spec["backend"],
             "loader": spec["loader"], "loader_clips_per_s": loader_rate, "model_clips_per_s": model_rate,
             "end_to_end_clips_per_s": together, "limited_by": limit, "handoff": backend.handoff,
             "clips": sum(b["video"].shape[0] for b in held), "source": spec["source"]}]


def run_end_to_end(models: list[str], backends: list[str], batch: int, data: Path | None, out: Path,
                   work_dir: Path, loaders: list[str], workers: int = 2, progress=print) -> list[dict]:
    from ..data.synthetic import SynthConfig, write_synthetic_dataset

    source = str(data) if data else "synthetic dataset, H.264 64x64, 24 frames, upscaled by the loader"
    if data is None:
        data = out / "synthetic-e2e"
        if not (data / "val.txt").is_file():
            write_synthetic_dataset(data, SynthConfig(clips_per_class=1, eval_clips_per_class=2), jobs=2)
    rows = []
    for model in models:
        for backend in backends:
            for loader in loaders:
                progress(f"end to end: {model}, {backend}, {loader} loader")
                rows += run_isolated("t2l_fast.perf.end_to_end", {
                    "model": model, "backend": backend, "loader": loader, "batch": batch, "workers": workers,
                    "data": str(data), "work_dir": str(work_dir), "source": source})
    return rows


if __name__ == "__main__":
    worker_main(measure_end_to_end)
