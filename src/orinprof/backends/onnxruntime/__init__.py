"""Backend: onnxruntime."""
