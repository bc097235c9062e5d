"""Evaluate a model: python train/evaluate.py (--model NAME | --checkpoint DIR) --root DIR --list ...
(see `t2l eval -h`)

The same code as `t2l eval`. Under torchrun each rank scores its shard and every video is counted once:
    torchrun --nproc_per_node=N train/evaluate.py --checkpoint ... --root ... --list ... --classes ...
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
