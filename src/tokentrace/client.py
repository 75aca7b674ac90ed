"""A small client for the tokentrace REST API (used by the CLI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:4318"


class ApiError(Exception):
    """The server answered with an error, or could not be reached."""


class ApiClient:
    def __init__(self, server: str | None = None, api_key: str | None = None, timeout: float = 60) -> None:
        self.server = (server or os.environ.get("TOKENTRACE_SERVER") or DEFAULT_SERVER).rstrip("/")
        key = api_key or os.environ.get("TOKENTRACE_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            message = response.json().get("error") or response.text
        except ValueError:
            message = response.text
        raise ApiError(f"{response.status_code} from {self.server}: {message}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kwargs))
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach tokentrace at {self.server}: {exc}") from exc

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self._send("GET", path, params=clean).json()

    def post(self, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self._send("POST", path, json=json, params=clean).json()

    def put(self, path: str, json: Any) -> Any:
        return self._send("PUT", path, json=json).json()

    def delete(self, path: str) -> Any:
        return self._send("DELETE", path).json()

    def stream(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream("GET", path, params=clean) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach tokentrace at {self.server}: {exc}") from exc
