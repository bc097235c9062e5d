"""Parameters and GFLOPs (multiply-adds) per view in two accountings and in closed form: `t2l bench flops`.

    python bench/flops.py [--quick] [--json flops.json] [--out runs/bench]
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "flops", *sys.argv[1:]]))
