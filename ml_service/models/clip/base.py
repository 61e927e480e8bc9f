"""What both Chinese-CLIP encoders share: choosing, loading and running a backend (ONNX int8/fp32, torch)."""

import logging
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ml_service.models.base import InferenceModel, Preparation
from ml_service.models.clip.checkpoint import load_torch_model
from ml_service.models.clip.export import (
    ExportedGraphs,
    can_export,
    ensure_onnx_export,
    onnx_paths,
    prebuilt_graphs,
)
from ml_service.models.clip.quantize import Int8Recipe, faithful_int8
from ml_service.models.clip.session import embed, normalise, onnx_session
from ml_service.models.clip.shipped import ShippedGraph, shipped_graph
from ml_service.models.errors import ModelError, NotServable

log = logging.getLogger("ml_service.clip")


class ClipEncoder(InferenceModel):
    """One encoder of a cn_clip checkpoint; subclasses supply their graph, recipe, probes and torch call."""

    #: How this encoder's graph is quantised for the onnx-int8 backend.
    int8_recipe: ClassVar[Int8Recipe]

    def __init__(
        self,
        model_name: str,
        release: str,
        weights_dir: Path,
        backend: str,
        threads: int,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        fetch_checkpoint: Preparation | None = None,
    ) -> None:
        super().__init__(model_name)
        self._fetch_checkpoint = fetch_checkpoint
        self.providers = providers
        self.release = release
        self.weights_dir = weights_dir
        self.backend = backend
        self.threads = threads
        self._session: Any = None
        self._torch_model: Any = None
        self._active = "none"
        #: Lowest cosine of the int8 graph to fp32 on the probe inputs (onnx-int8 backend only).
        self.int8_cosine: float | None = None
        #: The graph file the ONNX session runs (None for torch).
        self.served_graph: Path | None = None

    @abstractmethod
    def _graph(self, graphs: ExportedGraphs) -> Path:
        """This encoder's fp32 graph among the checkpoint's exported ones."""

    @abstractmethod
    def _probe_inputs(self) -> list[NDArray[Any]]:
        """Fixed, varied inputs on which the int8 graph is compared with the fp32 one."""

    @abstractmethod
    def _encode_torch(self, model: Any, batch: Any) -> Any:
        """This encoder's call on cn_clip's torch model for a batch tensor."""

    def _shipped(self) -> ShippedGraph | None:
        if self.backend == "torch":
            return None
        return shipped_graph(self.weights_dir, self.release, self.task, self.backend)

    def _load(self) -> None:
        shipped = self._shipped()
        if shipped is not None:  # an image's graph: no checkpoint, no export, no quantisation
            self._session = onnx_session(shipped.path, self.threads, self.providers)
            self._active, self.int8_cosine, self.served_graph = (
                shipped.backend,
                shipped.int8_cosine,
                shipped.path,
            )
            return
        if self.backend in ("onnx", "onnx-int8"):
            quantised: Path | None = None
            try:
                graphs = ensure_onnx_export(self.weights_dir, self.release, self.threads)
                path = self._graph(graphs)
                if self.backend == "onnx-int8":
                    quantised, self.int8_cosine = faithful_int8(
                        path, self.int8_recipe, self._probe_inputs, graphs.checkpoint_sha256
                    )
            except ModelError:
                raise
            except Exception as error:  # e.g. read-only weights dir: keep serving through torch
                log.warning("ONNX export failed, serving with torch", extra={"error": str(error)})
            else:
                self._session = onnx_session(quantised or path, self.threads, self.providers)
                self._active = "onnx-int8" if quantised else "onnx"
                self.served_graph = quantised or path
                return
        self._torch_model = load_torch_model(self.weights_dir, self.release, self.threads)
        self._active = "torch"

    def _unload(self) -> None:
        self._session = None
        self._torch_model = None

    async def prepare(self) -> None:
        """Its checkpoint fetched (by the fetch_checkpoint given), unless graphs made without it are here."""
        if self.prebuilt:
            return
        # Checked before a download: hundreds of MB fetched for a model that could not be served.
        visual, textual, _ = onnx_paths(self.weights_dir, self.release)
        exported = self.backend != "torch" and visual.is_file() and textual.is_file()
        if not exported and not can_export():
            raise NotServable(
                f"{self.model_name} is not among the models this installation serves: it has no exported "
                "graphs of it and no torch to export them (an immich-aio ML image serves the models it was "
                f"built with). Rebuild the image with `immich-aio build --images ml --ml-models "
                f"{self.model_name}`, or install immich-aio with its `ml` extra"
            )
        if self._fetch_checkpoint is not None:
            await self._fetch_checkpoint()

    def describe(self) -> dict[str, str]:
        """The backend actually serving it (int8 may have fallen back to fp32, a failed export to torch)."""
        return {"backend": self._active}

    @property
    def prebuilt(self) -> bool:
        """Whether its graphs were placed without their checkpoint (in an image): nothing to download."""
        if self.backend == "torch":
            return False
        return self._shipped() is not None or prebuilt_graphs(self.weights_dir, self.release) is not None

    @property
    def active_backend(self) -> str:
        """The backend actually serving: onnx, onnx-int8, or torch (also after a failed export)."""
        return self._active

    def _run(self, tensor: NDArray[Any]) -> NDArray[np.float32]:
        if self._session is not None:
            return embed(self._session, tensor)
        if self._torch_model is not None:
            return normalise(self._run_torch(tensor)[0])
        raise RuntimeError(f"{self.model_name} used before load()")

    def _run_torch(self, tensor: NDArray[Any]) -> NDArray[np.float32]:
        # torch costs ~4 s and ~0.9 GB RSS to import (measured); only the torch backend gets here.
        import torch

        with torch.inference_mode():
            result = self._encode_torch(self._torch_model, torch.from_numpy(tensor))
        return np.asarray(result.float().numpy(), dtype=np.float32)
