"""HTTP semantics beyond the bodies: what a 405 allows, HEAD, and a 204 without content."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Actor


def test_revoking_a_token_is_a_204_without_content_or_content_type(
    client: TestClient, member: Actor
) -> None:
    [token] = client.get("/api/v1/tokens", headers=member.headers).json()
    response = client.delete(f"/api/v1/tokens/{token['id']}", headers=member.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
