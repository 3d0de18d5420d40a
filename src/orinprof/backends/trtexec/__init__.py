"""Backend: trtexec."""
