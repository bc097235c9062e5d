"""Deployment writes: ONNX export of the video encoder, text encoder and classifier (onnx_export), INT8 for CPU
serving behind an agreement gate (int8), TensorRT engines (engine_build), Triton repositories (triton). Reading an
export back is runtime's job (runtime.bundle, runtime.graph_header)."""
