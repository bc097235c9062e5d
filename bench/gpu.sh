#!/usr/bin/env bash
# The full GPU benchmarks (throughput plan: fp16, batch 32-128; training cost; the claims verdict) on a GPU machine
# whose python has a CUDA torch:
#   bash bench/gpu.sh [OUT]        (default OUT: docs/benchmarks/gpu)
# What is missing is installed the way bench/gpu_check.sh does it (from wheels/ if present, torch pinned: the
# machine's CUDA torch is never replaced). Where onnxruntime-gpu (CUDA/TensorRT EP) or TensorRT is installed, those
# backends join the throughput run, each gated against torch CUDA fp32. For a quick pass/fail of every GPU path,
# run bench/gpu_check.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/benchmarks/gpu}"
python="${PYTHON:-python3}"
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'; print(torch.cuda.get_device_name(0))"
bash bench/gpu_check.sh --install-only
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$python" -m t2l_fast.cli bench throughput --gpu --out "$out"
"$python" -m t2l_fast.cli bench training --batch 16 --out "$out"
"$python" -m t2l_fast.cli bench claims --throughput "$out/throughput.json" --training "$out/training.json" --out "$out"
