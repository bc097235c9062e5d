"""`t2l serve`: the graphs of an export folder on a real Triton Inference Server."""
from __future__ import annotations

import argparse
import signal
import threading

from .common import EXPORT_BACKENDS, RUN_BATCH_HELP, non_negative_int, positive_int, run_batch


def _serve(args: argparse.Namespace) -> int:
    from ..deploy.serve import ServeError, ServeOptions, TritonServer

    options = ServeOptions(backend=args.backend, device=args.device, host=args.host, http_port=args.http_port,
                           grpc_port=args.grpc_port, metrics_port=args.metrics_port, max_batch=args.max_batch,
                           run_batch=args.run_batch,
                           queue_delay_us=args.queue_delay_us, exit_timeout_s=args.exit_timeout)
    stop, received = threading.Event(), []

    def on_signal(number, _frame):
        received.append(number)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with TritonServer(args.onnx, options, log=lambda line: print(line, flush=True)) as server:
            print(server.summary(), flush=True)
            while not stop.wait(0.5) and server.alive():
                pass
            if not received:
                raise ServeError(f"tritonserver exited by itself (code {server.process.returncode}); its log: "
                                 f"{server.log_path}")
            print(f"stopping (signal {received[0]}): in-flight requests get up to {args.exit_timeout} s", flush=True)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 + received[0]


def register(sub) -> None:
    """Add this group's sub-commands to the `t2l` sub-parsers."""
    p = sub.add_parser("serve", help="serve an export folder on a real Triton Inference Server (HTTP, gRPC, "
                       "dynamic batching, metrics)",
                       description="Runs NVIDIA's tritonserver (from the nvidia-pytriton wheel, CPU or GPU) with one "
                       "model per graph of the export: NAME_classifier (its classes; logits, probabilities and "
                       "labels), NAME_video_encoder and NAME_text_encoder (any classes). Clients send uint8 frames "
                       "[B, T, 3, S, S] as `t2l predict` samples them; `t2l predict VIDEO --server URL` is one. "
                       "SIGINT/SIGTERM stop it: in-flight requests finish within --exit-timeout.")
    p.add_argument("--onnx", metavar="DIR", required=True, help="a folder written by `t2l export onnx`")
    p.add_argument("--backend", choices=EXPORT_BACKENDS, default="auto",
                   help="what runs the graphs inside the server, as in `t2l predict`: auto (measured once per "
                   "machine, cached in DIR/backend_choice.json; the startup line says what it chose and why), onnx, "
                   "onnx-int8, openvino, openvino-bf16, openvino-int8 (INT8 only where its gate passed), tensorrt "
                   "(default auto)")
    p.add_argument("--device", choices=["cpu", "cuda"],
                   help="where the backend runs (default: cuda when available, else cpu)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: every interface)")
    p.add_argument("--http-port", type=non_negative_int, default=8000, help="0: a free port (default 8000)")
    p.add_argument("--grpc-port", type=non_negative_int, default=8001, help="0: a free port (default 8001)")
    p.add_argument("--metrics-port", type=non_negative_int, default=8002,
                   help="Prometheus /metrics; 0: a free port (default 8002)")
    p.add_argument("--max-batch", type=positive_int, default=32,
                   help="largest batch the dynamic batcher forms and a request may carry (default 32)")
    p.add_argument("--run-batch", type=run_batch, default=None, metavar="N|auto", help=RUN_BATCH_HELP)
    p.add_argument("--queue-delay-us", type=non_negative_int, default=2000,
                   help="longest a request waits for others to batch with, in microseconds (default 2000)")
    p.add_argument("--exit-timeout", type=positive_int, default=10,
                   help="on SIGINT/SIGTERM, seconds in-flight requests get to finish (default 10)")
    p.set_defaults(run=_serve)
