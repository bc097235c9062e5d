#!/usr/bin/env bash
# The GPU check, on a one-GPU machine whose python has a CUDA torch and nothing else reachable (about 8 minutes):
#   bash bench/gpu_check.sh [--dry-run] [--out DIR] [--budget-s S]     (PYTHON=... picks the interpreter)
#   bash bench/gpu_check.sh --install-only                                (what bench/gpu.sh uses)
# It installs only what is missing, from wheels/ when that folder exists (pip download -d wheels ...), else from the
# index, with the machine's torch pinned: it never replaces torch. Then every step prints PASS / FAIL / SKIP: reason
# and gpu_check.json + the throughput report land in --out (default runs/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
dry_run=0 install_only=0
for argument in "$@"; do
    case "$argument" in --dry-run) dry_run=1 ;; --install-only) install_only=1 ;; esac
done
torch_version=$("$python" -c "import torch; print(torch.__version__)") || {
    echo "FAIL setup: $python cannot import torch; this check uses the machine's own CUDA torch"; exit 1; }
# import name -> distribution, for t2l-fast's own needs and the components the check exercises where present
missing=$("$python" - <<'PY'
import importlib.util
needs = {"torchvision": "torchvision", "open_clip": "open_clip_torch", "safetensors": "safetensors", "yaml": "pyyaml",
         "tqdm": "tqdm", "av": "av", "numpy": "numpy", "pytest": "pytest", "onnx": "onnx", "onnxscript": "onnxscript",
         "pynvml": "nvidia-ml-py", "fvcore": "fvcore", "matplotlib": "matplotlib"}
print(" ".join(distribution for module, distribution in needs.items() if importlib.util.find_spec(module) is None))
PY
)
if [ -z "$missing" ]; then
    echo "setup: nothing to install (torch $torch_version kept)"
elif [ "$dry_run" = 1 ]; then
    echo "setup: would install $missing (torch $torch_version pinned)"
else
    constraints=$(mktemp)
    echo "torch==$torch_version" > "$constraints"
    source_options=(--retries 0 --timeout 5)  # a machine without network says so in seconds, not minutes
    [ -d wheels ] && source_options=(--no-index --find-links wheels)
    failed=""
    for distribution in $missing; do  # one at a time: one unavailable package must not stop the others
        "$python" -m pip install -q "${source_options[@]}" -c "$constraints" "$distribution" 2>/dev/null ||
            failed="$failed $distribution"
    done
    [ -n "$failed" ] && echo "setup: could not install:$failed (the steps that need them fail or skip and say so)"
    rm -f "$constraints"
fi
[ "$install_only" = 1 ] && exit 0
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
args=()
for argument in "$@"; do [ "$argument" != --install-only ] && args+=("$argument"); done
exec "$python" -m t2l_fast.perf.gpu_check "${args[@]}"
