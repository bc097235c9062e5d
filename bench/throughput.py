"""Model throughput of T2L vs ViFi-CLIP vs CLIP per backend, gated, in one run: `t2l bench throughput`.

    python bench/throughput.py --quick            # tiny models, under a minute
    python bench/throughput.py --out docs/benchmarks/cpu   # ViT-B/16 on this CPU
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "throughput", *sys.argv[1:]]))
