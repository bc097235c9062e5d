#!/usr/bin/env bash
# The torch backends of the throughput and training-cost benchmarks on a GPU machine that has only torch.
#   bash bench/gpu.sh [OUT]        (default OUT: docs/benchmarks/gpu)
# Needs: python3 with torch (CUDA); t2l-fast's own pure-Python needs are installed from wheels/ when that folder
# exists (pip download -d wheels open_clip_torch ftfy regex timm huggingface_hub safetensors pyyaml tqdm av), else
# from the index. No DALI, ONNX Runtime or TensorRT is needed; where onnxruntime-gpu (CUDA/TensorRT EP) or TensorRT
# is installed, those backends join the throughput run, each gated against torch CUDA fp32.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/benchmarks/gpu}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'; print(torch.cuda.get_device_name(0))"
if [ -d wheels ]; then
    python3 -m pip install -q --no-index --find-links wheels --no-build-isolation --no-deps -e . open_clip_torch ftfy regex safetensors pyyaml tqdm av
else
    python3 -m pip install -q -e .
fi
export HF_HUB_OFFLINE=1
python3 -m t2l_fast.cli bench throughput --gpu --out "$out"
python3 -m t2l_fast.cli bench training --batch 16 --out "$out"
python3 -m t2l_fast.cli bench claims --throughput "$out/throughput.json" --training "$out/training.json" --out "$out"
