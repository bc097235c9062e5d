"""Train a model: python train/train.py --config train/configs/NAME.yaml [--set key=value ...] [--resume PATH]

The same code as `t2l train` (t2l_fast.training). One process, or one per GPU (or CPU process) under torchrun:
    torchrun --nproc_per_node=N train/train.py --config ...
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
