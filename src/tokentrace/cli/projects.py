"""The `projects` commands: create, list and delete projects (with the admin token)."""

from __future__ import annotations

import click
from rich.table import Table

from tokentrace.cli.options import api_client, call_api, console, echo_json, json_option, server_option


@click.group()
def projects() -> None:
    """Projects and their API keys."""


@projects.command("create")
@click.argument("name")
@server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
def projects_create(name: str, server: str | None, admin_token: str | None) -> None:
    """Create a project; its API key is printed alone on the last line (shown once)."""
    created = call_api(lambda: api_client(server, admin_token).post("/api/v1/projects", {"name": name}))
    click.echo(f"Created project {created['project_id']}. Its API key (shown once):", err=True)
    click.echo(created["api_key"])


@projects.command("list")
@json_option
@server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
def projects_list(as_json: bool, server: str | None, admin_token: str | None) -> None:
    """List projects."""
    listing = call_api(lambda: api_client(server, admin_token).get("/api/v1/projects"))
    if as_json:
        echo_json(listing)
        return
    table = Table("project", "created")
    for p in listing["projects"]:
        table.add_row(p["project_id"], p["created_at"])
    console.print(table)


@projects.command("delete")
@click.argument("name")
@server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
@click.confirmation_option(prompt="Delete the project, its keys and all its data?")
def projects_delete(name: str, server: str | None, admin_token: str | None) -> None:
    """Delete a project, its keys and every span, score and rollup of it."""
    answer = call_api(lambda: api_client(server, admin_token).delete(f"/api/v1/projects/{name}"))
    rows = sum(answer["deleted"].values())
    click.echo(f"Deleted project {answer['project_id']} ({rows} rows).")
