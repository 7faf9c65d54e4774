"""Calling a served model: ready-to-paste curl and Python examples, a small client, and the
raw sample turned into what the explanation pictures draw."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

TIMEOUT_S = 60.0  # an explanation with the trust check takes a few seconds on a CPU


def _body(sample: Any) -> str:
    return json.dumps({"inputs": [sample]}, separators=(",", ":"))


def curl_example(url: str, sample: Any, *, with_key: bool = False) -> str:
    """A shell command that posts one raw sample to /predict."""
    key = ' -H "Authorization: Bearer $STUDIO_API_KEY"' if with_key else ""
    body = _body(sample).replace("'", "'\\''")
    return f"curl -s {url}/predict -H 'Content-Type: application/json'{key} \\\n  -d '{body}'"


def python_example(url: str, sample: Any, *, with_key: bool = False) -> str:
    """A Python snippet (httpx or requests alike) that posts one raw sample and prints the label."""
    headers = (
        '\n    headers={"Authorization": f"Bearer {os.environ[\'STUDIO_API_KEY\']}"},'
        if with_key
        else ""
    )
    imports = "import os\n\nimport httpx" if with_key else "import httpx"
    return (
        f"{imports}\n\n"
        f"sample = {json.dumps(sample)}\n"
        f"answer = httpx.post(\n"
        f'    "{url}/predict",\n'
        f'    json={{"inputs": [sample]}},{headers}\n'
        f").json()\n"
        f'print(answer["predictions"][0]["label"], answer["predictions"][0]["probabilities"])\n'
    )


def call(
    url: str,
    path: str,
    body: Any = None,
    *,
    file: tuple[str, bytes] | None = None,
    fields: dict[str, str] | None = None,
    api_key: str | None = None,
    timeout_s: float = TIMEOUT_S,
) -> tuple[int, dict]:
    """POST a JSON body (or an image file as multipart `file`, with text `fields`) to a server:
    (HTTP status, answer); status 0 when nothing answered."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        if file is not None:
            response = httpx.post(
                f"{url}{path}",
                files={"file": file},
                data=fields or {},
                headers=headers,
                timeout=timeout_s,
            )
        else:
            response = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as error:
        return 0, {"detail": f"the server at {url} did not answer ({error})"}
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"detail": response.text[:300]}


def human_view(contract: dict[str, Any], sample: Any) -> Any:
    """A raw sample as the explanation pictures take it: an image as (H, W, C) 0..255 pixels,
    a signal as numbers, a row as {column: value}, a text as it is."""
    if contract["kind"] == "image":
        channels, height, width = contract["shape"]
        pixels = np.asarray(sample, dtype=np.float64)
        if pixels.shape == (height, width):
            pixels = pixels[None]
        if pixels.shape == (channels, height, width):
            pixels = pixels.transpose(1, 2, 0)
        scale = 255.0 / float(contract["input"]["raw_max"])
        return np.clip(pixels * scale, 0, 255).round().astype(np.uint8)
    if contract["kind"] == "signal":
        return np.asarray(sample, dtype=np.float32).reshape(-1)
    return sample
