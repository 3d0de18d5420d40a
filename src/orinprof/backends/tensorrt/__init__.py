"""Backend: tensorrt."""
