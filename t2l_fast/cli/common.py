"""Arguments and model loading shared by several commands."""
from __future__ import annotations

import argparse

from ..backend_names import BACKENDS
from ..errors import T2LError
from ..numbers import NumberError, parse_number


def number(integer: bool = False, **limits: float):
    """An argparse `type=` for a number option checked by t2l_fast.numbers (type, finite, range)."""
    def parse(text: str) -> int | float:
        try:
            return parse_number(text, "value", integer=integer, **limits)
        except NumberError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


positive_int = number(integer=True, minimum=1)  # counts, sizes, batches
non_negative_int = number(integer=True, minimum=0)  # seeds; sizes where 0 means "keep"
positive_float = number(above=0)  # seconds, budgets


def run_batch(text: str) -> int | None:
    """--run-batch: auto (None: measured) or a positive batch."""
    return None if text == "auto" else positive_int(text)


RUN_BATCH_HELP = ("the most clips the video models run per backend call: Triton's preferred batch, and larger "
                  "batches run in parts of it (the text encoder runs whole batches); auto: the smallest batch within "
                  "3%% of the best throughput here, timed once per machine, export, backend and --max-batch (cached "
                  "in DIR/serve_batch.json; 1 on CPUs where batching does not pay) (default auto)")

EXPORT_BACKENDS = ("auto", *BACKENDS)  # --backend of an export folder: predict (which adds torch), serve, bench serve


def add_model_arguments(parser: argparse.ArgumentParser, several_checkpoints: str = "") -> None:
    """The options every command that runs a model shares. several_checkpoints: --checkpoint takes several folders
    (a list), and this says what they are for."""
    parser.add_argument("--model", help="registered model name (see `t2l models`)")
    several = dict(action="extend", nargs="+", metavar="DIR") if several_checkpoints else {}
    parser.add_argument("--checkpoint", **several,
                        help="a t2l-fast checkpoint folder (its config names the model)" + several_checkpoints)
    parser.add_argument("--pretrained", help="CLIP weights: open_clip tag, OpenAI ViT-B-16.pt, state dict, "
                        "local-dir:DIR")
    parser.add_argument("--descriptions", help="CSV of class name, description (what T2L was trained to read)")
    parser.add_argument("--templates", help="prompt templates: video, photo or bare (default: the model's own)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")


def load_model(args: argparse.Namespace, checkpoint: str | None, device: str | None = None):
    """(model in eval mode, device) from `checkpoint` or --model, with --pretrained/--device."""
    import torch

    from ..models.build import load_checkpoint
    from ..models.registry import create_model

    if not (args.model or checkpoint):
        raise T2LError("give --model NAME (see `t2l models`) or --checkpoint DIR")
    device = device or args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    check_device(device)
    if checkpoint and args.model:
        from ..models.checkpoint import read_checkpoint_info

        saved = read_checkpoint_info(checkpoint)["model"]["name"]
        if saved != args.model:
            raise T2LError(f"--checkpoint {checkpoint} holds {saved}, but --model {args.model} was given; drop "
                           f"--model (the checkpoint names its model)")
    if checkpoint:
        model = load_checkpoint(checkpoint, pretrained=args.pretrained, device=device)
    else:
        model = create_model(args.model, pretrained=args.pretrained, device=device)
    return model.eval(), device


def no_weights(args: argparse.Namespace, what: str) -> None:
    """Refuse --checkpoint/--pretrained where an export folder's graphs hold the weights."""
    if args.checkpoint or args.pretrained:
        raise T2LError(f"--checkpoint/--pretrained do not apply to {what}: the weights are in the graphs (export "
                       f"the checkpoint with `t2l export onnx --checkpoint DIR`)")


def open_export(folder: str, backend: str, *, device: str | None = None, model_name: str | None = None,
                trt_runtime: str = "auto", log=print):
    """(export, backend, open_runner) of export folder `folder` on `backend`: auto is chosen here (fastest gated
    backend on this machine) and its one-line reason logged; open_runner(kind) gives the runner of graph `kind`."""
    from ..runtime.bundle import ExportedModel
    from ..runtime.export_runners import export_runner

    bundle = ExportedModel(folder)
    bundle.check_fits(model_name=model_name)
    if backend == "auto":
        from ..runtime.backend_choice import choose_backend

        choice = choose_backend(bundle, device)
        log(choice.line)
        backend, device = choice.backend, choice.device
    return bundle, backend, lambda kind: export_runner(bundle, backend, kind, device=device, trt_runtime=trt_runtime)


def random_weights_note(args: argparse.Namespace) -> str:
    """The note (appended to a status line) that the weights are random: no --pretrained or --checkpoint."""
    if args.pretrained or args.checkpoint:
        return ""
    return "; note: no --pretrained or --checkpoint, so the weights are random and so are the scores"


def check_device(device: str) -> None:
    """A one-line error for a device string torch cannot parse, or a CUDA device this machine does not have."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise T2LError(f"--device {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (parsed.index or 0) >= count:
            raise T2LError(f"--device {device}: this machine has {count or 'no'} usable CUDA GPU(s); use --device cpu"
                           + (f" or cuda:0..{count - 1}" if count else ""))
