"""Export a model to ONNX graphs + manifest.json: the same as `t2l export onnx` (see its --help).

    python export/to_onnx.py --model t2l_vit_b16 --pretrained /weights/ViT-B-16.pt --checkpoint runs/t2l/model \
        --classes classes.txt --descriptions descriptions.csv --out exports/t2l_b16
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", "onnx", *sys.argv[1:]]))
