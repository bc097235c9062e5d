"""Train a model: python train/train.py --config train/configs/NAME.yaml [--set key=value ...] [--resume PATH]

The same code as `t2l train` (t2l_fast.training). One process for now; see the README for what is still to come.
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
