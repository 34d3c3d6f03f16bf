"""Responses shared by the JSON API and the HTML pages."""

import base64
import hashlib
import re

from fastapi.responses import Response

from app.services.exports import ExportFile

# The report is one self-contained file, so it styles itself inline; the first <style> is the
# template's own (anything a user wrote is escaped and comes later).
_FIRST_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)


def download(file: ExportFile, *, inline: bool = False) -> Response:
    """An export as a file the browser saves (or shows, when ``inline``)."""
    disposition = "inline" if inline else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{file.filename}"'}
    if file.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = standalone_document_policy(file.content)
    return Response(file.content, media_type=file.media_type, headers=headers)


def standalone_document_policy(content: bytes) -> str:
    """No script and no request at all; only the document's own style block, by its hash
    (the app's pages allow no inline style, which left the report unstyled)."""
    match = _FIRST_STYLE.search(content)
    style = "'none'"
    if match is not None:
        digest = base64.b64encode(hashlib.sha256(match.group(1)).digest()).decode()
        style = f"'sha256-{digest}'"
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src {style}",
            "img-src data:",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
