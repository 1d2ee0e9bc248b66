"""Where an ONNX model runs: onnxruntime on the CPU.

This module knows nothing about faces; :mod:`facetrace.vision.insightface` says
what goes in and what comes out. onnxruntime is the optional extra
``facetrace[onnx]``, imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from facetrace.core.errors import ModelIntegrityError
from facetrace.vision.weights import ModelFile

Shape = tuple[int | str | None, ...]  # onnxruntime gives names (or None) for dynamic dimensions


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: Shape


class OnnxSession:
    """One model loaded into an ``onnxruntime.InferenceSession`` on the CPU provider.

    ``threads`` defaults to 1: Facetrace parallelises over worker processes, and
    each of them taking every core would only make them fight.
    """

    def __init__(self, model: ModelFile, *, threads: int = 1) -> None:
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime's errors share no base class but Exception
            raise ModelIntegrityError(f"{model.path} is not a loadable ONNX model: {err}") from err
        self.inputs = [TensorInfo(i.name, tuple(i.shape)) for i in self._session.get_inputs()]
        self.outputs = [TensorInfo(o.name, tuple(o.shape)) for o in self._session.get_outputs()]
        if len(self.inputs) != 1:
            raise ModelIntegrityError(f"{model.path} takes {len(self.inputs)} inputs; expected one image")

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Feed ``blob`` to the (single) input; every output, in the model's order."""
        outputs: list[np.ndarray] = self._session.run(None, {self.inputs[0].name: blob})
        return outputs


def _onnxruntime() -> ModuleType:
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as err:
        raise ModelIntegrityError(
            "this model runs on onnxruntime, which is not installed: pip install 'facetrace[onnx]'"
        ) from err
