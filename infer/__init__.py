"""Inference for trained style networks: ONNX export (`nst export`), instant stylization with onnxruntime
(`nst stylize`, `infer.stylize.Stylizer`) and fast-vs-iterative comparison (`nst compare`)."""
