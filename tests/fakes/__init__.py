"""Fakes of NVIDIA's TensorRT tools for tests.  They run NO TensorRT: they read the ONNX and obey
the rules the real tools enforce, each rule citing its source (``TRT@tag:path:Lnn`` is
``git show tag:path`` of github.com/NVIDIA/TensorRT at line nn; "review Bn/Mn/mn" is
``shared/reviews/tensorrt-first-contact.md``)."""
