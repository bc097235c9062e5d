"""Deployment: ONNX export of the video encoder, text encoder and classifier (onnx_export), export folders read
back and checked (bundle), INT8 for CPU serving behind an agreement gate (int8)."""
