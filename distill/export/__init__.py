"""Export a model file for deployment (ONNX), checked against PyTorch before it is reported."""

from distill.export.onnx import ExportReport, Parity, export_onnx, export_table

__all__ = ["ExportReport", "Parity", "export_onnx", "export_table"]
