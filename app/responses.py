"""Responses shared by the JSON API and the HTML pages."""

from fastapi.responses import Response

from app.services.exports import ExportFile


def download(file: ExportFile, *, inline: bool = False) -> Response:
    """An export as a file the browser saves (or shows, when ``inline``)."""
    disposition = "inline" if inline else "attachment"
    return Response(
        file.content,
        media_type=file.media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{file.filename}"'},
    )
