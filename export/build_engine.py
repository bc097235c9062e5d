"""Build TensorRT engines (+ JSON sidecars) from exported ONNX graphs: the same as `t2l export trt` (see its --help).

    python export/build_engine.py --onnx exports/t2l_b16 --opt-batch 8 --max-batch 32
    python export/build_engine.py --onnx exports/t2l_b16/classifier.onnx --runtime tensorrt-rtx \
        --compute-capability 8.9 --out engines/classifier.engine
"""
import sys

from t2l_fast.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", "trt", *sys.argv[1:]]))
