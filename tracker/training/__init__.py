"""Training (torch only): data, network, loss, training loop, ONNX export. Never imported at run time."""
