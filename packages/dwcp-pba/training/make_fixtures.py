#!/usr/bin/env python3
"""Writes test/fixtures/nan-model.onnx: same input/output shapes as the LSTM, outputs all NaN,
so the test can check the runtime fallback. Run: /usr/bin/python3 training/make_fixtures.py"""
import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(HERE, "..", "test", "fixtures", "nan-model.onnx")
nodes = [
    helper.make_node("ReduceSum", ["input"], ["s"], axes=[1], keepdims=0),  # [batch, 1]
    helper.make_node("Mul", ["s", "zero"], ["z"]),
    helper.make_node("Add", ["z", "nan"], ["output"]),  # [batch, 6] of NaN
]
graph = helper.make_graph(
    nodes,
    "nan",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 20, 1])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 6])],
    [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("nan", TensorProto.FLOAT, [1, 6], [float("nan")] * 6),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, out)
print("wrote", out)
