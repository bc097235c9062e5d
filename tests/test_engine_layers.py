"""The engine inspector's layers, summarised on the CPU from crafted JSON (reading a real engine needs a GPU): layer
count, Myelin regions, and whether attention looks fused (a heuristic)."""
import json

from t2l_fast.runtime.engine_layers import describe_layers, summarize_layers


def detailed_layer(name: str, tactic: str, layer_type: str = "CaskGemmMatrixMultiply") -> dict:
    return {"Name": name, "LayerType": layer_type, "Inputs": [], "Outputs": [], "TacticName": tactic,
            "StreamId": 0, "Metadata": f"[ONNX Layer: {name}]"}


def inspector(layers: list) -> str:
    return json.dumps({"Layers": layers, "Bindings": ["frames", "embedding"]})


def test_a_fused_attention_tactic_reads_as_fused():
    layers = [detailed_layer("{ForeignNode[/visual/blocks.0/attn/MatMul.../Softmax]}",
                             "sm90_xmma_fmha_v2_gemm_mha_v2_fp16_128_64", "Myelin"),
              detailed_layer("/visual/proj/MatMul", "sm90_xmma_gemm_f16f16_f16f32_tn_n")]
    summary = summarize_layers(inspector(layers))
    assert summary["layers"] == 2 and summary["detailed"] and summary["myelin_regions"] == 1
    assert summary["attention_fused"] and summary["attention_layers"] == [layers[0]["Name"]]
    assert describe_layers(summary) == "2 layers (1 Myelin regions), attention fused: yes (heuristic)"


def test_separate_gemm_and_softmax_layers_read_as_not_fused():
    layers = [detailed_layer("/visual/blocks.0/attn/MatMul", "sm90_xmma_gemm_f16f16_f16f32_nn_n"),
              detailed_layer("/visual/blocks.0/attn/Softmax", "softmax_kernel_fp32", "Softmax"),
              detailed_layer("/visual/blocks.0/attn/MatMul_1", "sm90_xmma_gemm_f16f16_f16f32_nn_n")]
    summary = summarize_layers(inspector(layers))
    assert summary["layers"] == 3 and not summary["attention_fused"] and summary["myelin_regions"] == 0
    assert describe_layers(summary).endswith("attention fused: no (heuristic)")


def test_names_only_layers_say_their_details_are_hidden():
    summary = summarize_layers(inspector(["{ForeignNode[/visual/conv1/Conv.../visual/ln_post/Add]}"]))
    assert not summary["detailed"] and summary["myelin_regions"] == 1 and not summary["attention_fused"]
    assert "DETAILED profiling verbosity" in describe_layers(summary)


def test_fp16_trtexec_commands_dump_their_layers_with_details():
    from pathlib import Path

    from t2l_fast.deploy.engine_build import BuildOptions, cli_command

    profile = {"frames": {key: [1, 8, 3, 32, 32] for key in ("min", "opt", "max")}}
    fp16 = cli_command("tensorrt", Path("v.onnx"), Path("out/v.engine"), profile, BuildOptions(), "fp16")
    fp32 = cli_command("tensorrt", Path("v.onnx"), Path("out/v.engine"), profile, BuildOptions())
    assert {"--profilingVerbosity=detailed", "--dumpLayerInfo", "--exportLayerInfo=out/v.engine.layers.json"} <= set(
        fp16)
    assert "--profilingVerbosity=detailed" in fp32 and "--dumpLayerInfo" not in fp32
    assert "--dumpLayerInfo" not in cli_command("tensorrt-rtx", Path("v.onnx"), Path("v.engine"), profile,
                                                BuildOptions(), "fp16")
