"""The UI's templates and static files; htmx and uPlot land in static/vendor via `make install`."""

from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
