"""Serve a Model Studio bundle over HTTP: FastAPI + onnxruntime, nothing else from the studio.

This one file is copied into every exported bundle as `serve.py`, next to `model.onnx` and
`contract.json`; `studio serve` builds on the same `create_app`. It imports only the standard
library, numpy, fastapi and onnxruntime (Pillow when image files are posted), so a bundle runs
on any machine with those installed:

    pip install numpy fastapi uvicorn onnxruntime pillow
    python serve.py [BUNDLE_DIR] [--host 127.0.0.1] [--port 8000]

Endpoints: GET /health, GET /metadata, POST /predict with {"inputs": [sample, ...]} (samples
as a person has them: pixel values, numbers, {column: value} rows, strings) or a multipart
`file` (an image), and the OpenAPI docs at /docs. With STUDIO_API_KEY set, every request needs
`Authorization: Bearer <key>`. Limits: STUDIO_SERVE_MAX_BODY_MB (default 10) and
STUDIO_SERVE_MAX_SAMPLES (default 256 per request).
"""

from __future__ import annotations

import argparse
import hmac
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

CONTRACT_FORMAT = 1  # the contract.json format this file reads
CONTRACT_FILE = "contract.json"
MODEL_FILE = "model.onnx"
MB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 10 * MB  # a request body larger than this is refused with 413
DEFAULT_MAX_SAMPLES = 256  # samples in one /predict request
DEFAULT_THREADS = 1  # onnxruntime threads per request: requests already run side by side
MAX_IMAGE_PIXELS = 40_000_000  # an uploaded image file larger than this is refused undecoded
Runtime = Callable[[np.ndarray], np.ndarray]  # a batch of model inputs -> the model's outputs


class RequestError(Exception):
    """A request the server refuses: the HTTP status, the field at fault and what was expected."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{self.field}: {self.message}", "field": self.field},
            status_code=self.status,
        )


class BundleError(Exception):
    """A bundle folder the server cannot start from (missing file, unknown format)."""


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _numbers(value: Any, field: str, expected: str) -> np.ndarray:
    """Nested lists of finite numbers -> float64 array; anything else is a RequestError."""
    if not isinstance(value, list):
        raise RequestError(422, field, f"expected {expected}; got {_kind_of(value)}")
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise RequestError(
            422, field, f"expected {expected}; got nested lists of uneven lengths"
        ) from None
    if array.dtype.kind not in "iuf":
        raise RequestError(422, field, f"expected {expected}; got values that are not all numbers")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise RequestError(422, field, "expected finite numbers; got NaN or infinity")
    return array


class Preprocessor:
    """contract.json in action: raw samples -> the model's input batch, outputs -> answers."""

    def __init__(self, contract: Mapping[str, Any]) -> None:
        if contract.get("format") != CONTRACT_FORMAT:
            raise BundleError(
                f"{CONTRACT_FILE} has format {contract.get('format')!r}; this server reads "
                f"format {CONTRACT_FORMAT} (export the bundle again with this studio)"
            )
        self.contract = contract
        self.kind: str = contract["kind"]
        self.shape = tuple(int(d) for d in contract["shape"])
        self.dtype = np.int64 if contract["dtype"] == "int64" else np.float32
        self.facts: dict[str, Any] = contract["input"]
        self.class_names: list[str] = list(contract["class_names"])
        self.output: dict[str, Any] = contract["output"]
        if self.kind == "text":
            self.index = {token: i for i, token in enumerate(self.facts["vocabulary"])}
            self.pattern = re.compile(self.facts["token_pattern"])
        else:
            trailing = {"image": (1, 1), "signal": (1,)}.get(self.kind, ())
            self.mean = np.asarray(self.facts["mean"], np.float32).reshape(-1, *trailing)
            self.std = np.asarray(self.facts["std"], np.float32).reshape(-1, *trailing)

    # ---- raw sample -> model input ------------------------------------------------------

    def batch(self, inputs: Any, *, max_samples: int) -> np.ndarray:
        """The `inputs` list of a /predict body -> (n, *shape) model input."""
        if not isinstance(inputs, list):
            raise RequestError(422, "inputs", f"expected a list of samples; got {_kind_of(inputs)}")
        if not inputs:
            raise RequestError(422, "inputs", "expected at least one sample; got an empty list")
        if len(inputs) > max_samples:
            raise RequestError(
                413,
                "inputs",
                f"{len(inputs)} samples is more than the limit of {max_samples} per request; "
                "send them in smaller batches",
            )
        samples = [self.sample(value, f"inputs[{i}]") for i, value in enumerate(inputs)]
        return np.stack(samples)

    def sample(self, value: Any, field: str) -> np.ndarray:
        """One raw sample -> one model input shaped like the contract's `shape`."""
        if self.kind == "image":
            return self._image(value, field)
        if self.kind == "signal":
            return self._signal(value, field)
        if self.kind == "tabular":
            return self._row(value, field)
        return self._text(value, field)

    def _normalize(self, raw: np.ndarray) -> np.ndarray:
        return (raw.astype(np.float32) - self.mean) / self.std

    def _image(self, value: Any, field: str) -> np.ndarray:
        channels, height, width = self.shape
        raw_max = float(self.facts["raw_max"])
        expected = f"pixel values 0 to {raw_max:g} as nested lists shaped {list(self.shape)}"
        pixels = _numbers(value, field, expected)
        if pixels.shape == (height, width) and channels == 1:
            pixels = pixels[None]
        elif pixels.shape == (height, width, channels) and pixels.shape != self.shape:
            pixels = pixels.transpose(2, 0, 1)  # (H, W, C) as image libraries hold pixels
        if pixels.shape != self.shape:
            raise RequestError(
                422, field, f"expected shape {list(self.shape)}; got {list(pixels.shape)}"
            )
        low, high = float(pixels.min()), float(pixels.max())
        if low < 0 or high > raw_max:
            raise RequestError(
                422,
                field,
                f"expected pixel values from 0 to {raw_max:g}; got values from {low:g} to {high:g}",
            )
        return self._normalize(pixels.astype(np.float32) / np.float32(raw_max))

    def image_file(self, data: bytes, field: str = "file") -> np.ndarray:
        """An image file -> one model input, decoded and resized as the studio's image uploads."""
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise RequestError(
                415,
                field,
                "this server has no Pillow to read image files; send the pixels "
                'as JSON {"inputs": [...]} or install pillow',
            ) from None
        channels, height, width = self.shape
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.draft("RGB", (width, height))  # JPEG: decode at a reduced scale
                if picture.size[0] * picture.size[1] > MAX_IMAGE_PIXELS:
                    raise RequestError(
                        413,
                        field,
                        f"the image is {picture.size[0]}x{picture.size[1]} pixels, "
                        f"more than {MAX_IMAGE_PIXELS / 1e6:g} megapixels",
                    )
                picture.load()
                rgb = picture.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        except RequestError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise RequestError(
                422,
                field,
                "expected an image file (PNG, JPEG, GIF, BMP, WebP or TIFF); "
                "its content could not be read as one",
            ) from None
        rgb_pixels = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
        scale = np.float32(self.facts["file"]["pixel_max"])
        if channels == 1:
            gray = rgb_pixels.astype(np.float32) @ np.asarray(
                self.facts["file"]["gray"], np.float32
            )
            raw = gray[None] / scale
        else:
            raw = rgb_pixels.transpose(2, 0, 1).astype(np.float32) / scale
        return self._normalize(raw)

    def _signal(self, value: Any, field: str) -> np.ndarray:
        channels, length = self.shape
        shape = f"[{length}]" if channels == 1 else f"[{channels}, {length}]"
        values = _numbers(value, field, f"a list of numbers shaped {shape}")
        if values.shape == (length,) and channels == 1:
            values = values[None]
        if values.shape != self.shape:
            raise RequestError(422, field, f"expected shape {shape}; got {list(values.shape)}")
        return self._normalize(values)

    def _row(self, value: Any, field: str) -> np.ndarray:
        columns: list[str] = self.facts["columns"]
        if isinstance(value, list):
            if len(value) != len(columns):
                raise RequestError(
                    422,
                    field,
                    f"expected {len(columns)} values in column order ({', '.join(columns)}); "
                    f"got {len(value)}",
                )
            value = dict(zip(columns, value, strict=True))
        if not isinstance(value, dict):
            raise RequestError(
                422, field, f"expected an object keyed by column name; got {_kind_of(value)}"
            )
        unknown = [name for name in value if name not in columns]
        if unknown:
            raise RequestError(
                422,
                f"{field}.{unknown[0]}",
                f"unknown column {unknown[0]!r}; the columns are {', '.join(columns)}",
            )
        missing = [name for name in columns if name not in value]
        if missing:
            raise RequestError(
                422, f"{field}.{missing[0]}", f"missing column(s) {', '.join(map(repr, missing))}"
            )
        row = np.empty(len(columns), dtype=np.float64)
        for position, name in enumerate(columns):
            cell = value[name]
            if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                raise RequestError(
                    422, f"{field}.{name}", f"expected a number; got {_kind_of(cell)}"
                )
            if not math.isfinite(cell):
                raise RequestError(422, f"{field}.{name}", "expected a finite number")
            row[position] = cell
        return self._normalize(row)

    def _text(self, value: Any, field: str) -> np.ndarray:
        if not isinstance(value, str):
            raise RequestError(422, field, f"expected a string; got {_kind_of(value)}")
        text = value.lower() if self.facts.get("lowercase", True) else value
        tokens = self.pattern.findall(text)[: self.facts["max_length"]]
        ids = np.full(self.shape, self.facts["pad_id"], dtype=np.int64)
        unk = self.facts["unk_id"]
        ids[: len(tokens)] = [self.index.get(token, unk) for token in tokens]
        return ids

    # ---- model output -> answer -----------------------------------------------------------

    def answers(self, outputs: np.ndarray) -> list[dict[str, Any]]:
        """(n, outputs) raw model outputs -> one {"label", "index", "probabilities"} each."""
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if self.output["kind"] == "value":
            values = outputs[:, 0] * self.output["std"] + self.output["mean"]
            return [
                {"label": f"{v:.4g}", "index": None, "value": float(v), "probabilities": {}}
                for v in values
            ]
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        top_k = int(self.output.get("top_k", 3))
        answers = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")[:top_k]
            best = int(order[0])
            answers.append(
                {
                    "label": self.class_names[best],
                    "index": best,
                    "probabilities": {self.class_names[int(i)]: float(row[i]) for i in order},
                }
            )
        return answers

    def describe(self) -> dict[str, Any]:
        """The input as /metadata states it (no vocabulary: its size)."""
        described = {"kind": self.kind, "shape": list(self.shape), "dtype": self.contract["dtype"]}
        described.update(
            {k: v for k, v in self.facts.items() if k not in ("vocabulary", "mean", "std", "file")}
        )
        if self.kind != "text":
            described["normalization"] = {"mean": self.facts["mean"], "std": self.facts["std"]}
        return described


class OnnxRuntime:
    """An onnxruntime session on the CPU: a batch in, the model's outputs out (thread-safe)."""

    name = "onnx"

    def __init__(self, path: Path, *, threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: bearer-key check and a body-size cap on every route (routes added to the
    app later included), answered before the body is read."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key and not self._authorized(headers.get(b"authorization", b"")):
            await JSONResponse(
                {
                    "detail": "Authorization: expected 'Bearer <key>' with the server's "
                    "STUDIO_API_KEY",
                    "field": "Authorization",
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await too_large_response(self.max_body_bytes, int(declared))(scope, receive, send)
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)

    def _authorized(self, header: bytes) -> bool:
        expected = b"Bearer " + (self.api_key or "").encode()
        return hmac.compare_digest(header, expected)


def too_large_response(limit: int, size: int | None = None) -> JSONResponse:
    said = f"{size} bytes" if size is not None else "the body"
    return JSONResponse(
        {
            "detail": f"body: {said} is more than the limit of {limit} bytes "
            "(STUDIO_SERVE_MAX_BODY_MB)",
            "field": "body",
        },
        status_code=413,
    )


def read_contract(bundle_dir: Path) -> dict[str, Any]:
    path = Path(bundle_dir) / CONTRACT_FILE
    if not path.is_file():
        raise BundleError(f"{bundle_dir} has no {CONTRACT_FILE}; point at an exported bundle")
    return json.loads(path.read_text(encoding="utf-8"))


OPENAPI_PREDICT = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {"inputs": {"type": "array", "items": {}}},
                },
                "example": {"inputs": ["<a raw sample; GET /metadata shows one>"]},
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


def create_app(
    bundle_dir: str | Path,
    *,
    runtime: Runtime | None = None,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    threads: int = DEFAULT_THREADS,
) -> FastAPI:
    """The HTTP app for a bundle folder (contract.json + model.onnx, or any `runtime`)."""
    bundle_dir = Path(bundle_dir)
    contract = read_contract(bundle_dir)
    preprocessor = Preprocessor(contract)
    if runtime is None:
        model_path = bundle_dir / MODEL_FILE
        if not model_path.is_file():
            raise BundleError(f"{bundle_dir} has no {MODEL_FILE}; export the run as a bundle")
        runtime = OnnxRuntime(model_path, threads=threads)
    title = f"{contract.get('model_name', 'model')} (Model Studio)"
    app = FastAPI(title=title, description="Predictions from a model trained in Model Studio.")
    app.state.contract, app.state.preprocessor, app.state.runtime = contract, preprocessor, runtime
    app.state.max_samples = max_samples
    app.add_middleware(Guard, api_key=api_key or None, max_body_bytes=max_body_bytes)

    @app.exception_handler(RequestError)
    async def refused(_request: Request, error: RequestError) -> JSONResponse:
        return error.response()

    @app.exception_handler(BodyTooLarge)
    async def too_large(_request: Request, _error: BodyTooLarge) -> JSONResponse:
        return too_large_response(max_body_bytes)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return {
            "run_id": contract.get("run_id"),
            "model_name": contract.get("model_name"),
            "dataset": contract.get("dataset"),
            "task": contract.get("task"),
            "runtime": getattr(runtime, "name", type(runtime).__name__),
            "input": preprocessor.describe(),
            "class_names": preprocessor.class_names,
            "output": contract["output"],
            "limits": {"max_body_bytes": max_body_bytes, "max_samples": max_samples},
            "example": contract.get("example"),
        }

    @app.post("/predict", openapi_extra=OPENAPI_PREDICT)
    async def predict(request: Request) -> JSONResponse:
        """{"inputs": [raw sample, ...]} or a multipart image `file` -> {"predictions": [...]}."""
        batch = await read_batch(request, preprocessor, max_samples=max_samples)
        outputs = await run_in_threadpool(runtime, batch)
        # plain JSON: the answer is built here, nothing for a response model to validate
        return JSONResponse({"predictions": preprocessor.answers(outputs)})

    return app


async def read_body_json(request: Request) -> Any:
    """The request body as JSON, or a 400 saying what the body should be."""
    body = await request.body()
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(
            400, "body", f'expected JSON such as {{"inputs": [...]}}; it does not parse ({error})'
        ) from None


async def read_image_form(
    request: Request, preprocessor: Preprocessor
) -> tuple[np.ndarray, dict[str, str]]:
    """A multipart body: its image `file` as one model input, and its other (text) fields."""
    if preprocessor.kind != "image":
        raise RequestError(
            415,
            "file",
            f"files are read only by image models; this one reads {preprocessor.kind}: "
            'send JSON {"inputs": [...]}',
        )
    try:
        form = await request.form(max_files=1, max_fields=8)
    except AssertionError:  # Starlette says python-multipart is missing
        raise RequestError(
            415,
            "file",
            "this server cannot read multipart bodies (install python-multipart); send the "
            'pixels as JSON {"inputs": [...]}',
        ) from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise RequestError(422, "file", "expected an image file in the multipart field 'file'")
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    return preprocessor.image_file(await upload.read()), fields


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_batch(request: Request, preprocessor: Preprocessor, *, max_samples: int) -> Any:
    """A /predict request (JSON `inputs` or a multipart image `file`) -> the model's input."""
    if is_multipart(request):
        sample, _fields = await read_image_form(request, preprocessor)
        return sample[None]
    payload = await read_body_json(request)
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise RequestError(
            422,
            "inputs",
            f'expected an object {{"inputs": [sample, ...]}}; got {_kind_of(payload)}',
        )
    return preprocessor.batch(payload["inputs"], max_samples=max_samples)


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"error: {name}={raw!r} is not a number; try {default:g}") from None
    if value <= 0:
        raise SystemExit(f"error: {name}={raw} must be above 0")
    return value


def limits_from_env(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """max_body_bytes and max_samples from STUDIO_SERVE_MAX_BODY_MB / _MAX_SAMPLES."""
    env = os.environ if env is None else env
    body_mb = _env_number(env, "STUDIO_SERVE_MAX_BODY_MB", DEFAULT_MAX_BODY_BYTES / MB)
    samples = _env_number(env, "STUDIO_SERVE_MAX_SAMPLES", DEFAULT_MAX_SAMPLES)
    return {"max_body_bytes": int(body_mb * MB), "max_samples": int(samples)}


def main(argv: list[str] | None = None) -> int:
    """`python serve.py [BUNDLE_DIR] [--host] [--port]`: serve the bundle with uvicorn."""
    parser = argparse.ArgumentParser(description="Serve a Model Studio bundle over HTTP.")
    parser.add_argument("bundle", nargs="?", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="per request")
    args = parser.parse_args(argv)
    import uvicorn

    try:
        app = create_app(
            args.bundle,
            api_key=os.environ.get("STUDIO_API_KEY") or None,
            threads=args.threads,
            **limits_from_env(),
        )
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
