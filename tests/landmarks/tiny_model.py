"""A tiny ONNX model that follows the landmark contract, built by the tests (never committed as a file).

output[n, l, :] = bias[l] + sum_c weight[c, l] * mean over the crop of channel c (RGB order, [0, 1]),
so its answers are known exactly: a black crop gives ``bias``, a pure red one ``bias + weight[0]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_weights(n_landmarks: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """weight (3, L, 3), bias (L, 3): x, y in [-0.6, 0.6], log sigma around log 0.02."""
    rng = np.random.default_rng(seed)
    bias = np.concatenate([rng.uniform(-0.6, 0.6, (n_landmarks, 2)),
                           np.log(0.02) + rng.uniform(-0.2, 0.2, (n_landmarks, 1))], axis=1)
    weight = rng.uniform(-0.1, 0.1, (3, n_landmarks, 3))
    return weight.astype(np.float32), bias.astype(np.float32)


def build_tiny_model(path: Path, size: int = 64, n_landmarks: int = 10, seed: int = 0,
                     input_name: str = "image", output_name: str = "landmarks", fixed_batch: bool = False,
                     metadata: dict | None = None, weight: np.ndarray | None = None,
                     bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Write the ONNX file (and its JSON metadata unless ``metadata`` is {}); returns (weight, bias).

    ``weight`` (3, L, 3) / ``bias`` (L, 3): fixed values instead of random ones."""
    w_rand, b_rand = tiny_weights(n_landmarks, seed)
    weight = w_rand if weight is None else np.asarray(weight, dtype=np.float32)
    bias = b_rand if bias is None else np.asarray(bias, dtype=np.float32)
    batch = 1 if fixed_batch else "N"
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["y"]),
        helper.make_node("Add", ["y", "b"], ["z"]),
        helper.make_node("Reshape", ["z", "shape"], ["out"]),
    ]
    nodes[0].input[0] = input_name
    nodes[-1].output[0] = output_name
    inits = [numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(weight.reshape(3, -1), "w"),
             numpy_helper.from_array(bias.reshape(-1), "b"),
             numpy_helper.from_array(np.array([-1, n_landmarks, 3], np.int64), "shape")]
    graph = helper.make_graph(
        nodes, "tiny_landmarks",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, n_landmarks, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    if metadata is None:
        metadata = {"input_size": size, "landmark_set": "tiny", "version": "test"}
    if metadata:
        path.with_suffix(".json").write_text(json.dumps(metadata))
    return weight, bias
