"""A client made from nothing but the service's /openapi.json: it encodes a request body as the operation's
schema and encoding say, and checks the answer against the response documented for its status.

It knows no field name, part type or content type of its own; whatever a generated client would need
and the document did not say would make a call fail here.
"""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema


@dataclass
class SpecClient:
    """Calls operations of an OpenAPI document by path and method."""

    client: httpx.Client
    spec: dict[str, Any]

    @classmethod
    def load(cls, client: httpx.Client) -> "SpecClient":
        response = client.get("/openapi.json")
        response.raise_for_status()
        return cls(client, response.json())

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        # References point into the document's components: make them resolvable from the schema's root.
        return jsonschema.Draft202012Validator({**schema, "components": self.spec["components"]})

    def call(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Send body as the operation's documented request body; return (status, validated answer)."""
        operation = self.spec["paths"][path][method]
        media_type, media = next(iter(operation["requestBody"]["content"].items()))
        self._validator(media["schema"]).validate(
            {k: v if not isinstance(v, bytes) else v.decode("latin-1") for k, v in body.items()}
        )
        if media_type == "application/json":
            response = self.client.request(method, path, json=body)
        elif media_type == "multipart/form-data":
            response = self.client.request(method, path, files=self._multipart(media, body))
        else:
            raise AssertionError(f"no encoding for {media_type}")
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (response.status_code, response.text)
        answer_type, answer = next(iter(documented["content"].items()))
        assert response.headers["content-type"].startswith(answer_type)
        payload = response.json() if answer_type == "application/json" else response.text
        self._validator(answer["schema"]).validate(payload)
        return response.status_code, payload

    def _multipart(self, media: dict[str, Any], body: dict[str, Any]) -> list[tuple[str, Any]]:
        """Each property a part: binary strings as files, objects as the encoding's content type says."""
        properties = media["schema"]["properties"]
        encoding = media.get("encoding", {})
        parts: list[tuple[str, Any]] = []
        for name, value in body.items():
            declared = properties[name]
            content_type = encoding.get(name, {}).get("contentType")
            if declared.get("format") == "binary":
                parts.append((name, (name, value, content_type or "application/octet-stream")))
            elif content_type == "application/json":
                parts.append((name, (None, json.dumps(value).encode(), content_type)))
            else:
                assert isinstance(value, str), f"{name}: the document gives no encoding for {type(value)}"
                parts.append((name, (None, value.encode())))
        return parts
