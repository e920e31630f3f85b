"""Inference for trained style networks: ONNX export (`nst export`), instant stylization with onnxruntime
(`nst stylize`, `infer.stylize.Stylizer`; its command in stylize_cli / stylize_plan / stylize_run /
stylize_report, tiles in `infer.tiling`, execution providers in `infer.providers`, videos with their sound
in `infer.video`), live stylization of a camera or stream (`nst live`, `infer.live`) and fast-vs-iterative
comparison (`nst compare`)."""
