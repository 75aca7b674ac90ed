"""The web UI: server-rendered pages (Jinja2), one module per page, over query/ like the API."""
