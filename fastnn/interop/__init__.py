"""Interop with other frameworks: ``fastnn.interop.torch`` (PyTorch) and
``fastnn.interop.onnx`` (ONNX).

Why it is built this way: each framework is an optional dependency, so each
has its own module, imported only when used.
"""
