"""`permafrost serve`: a local, read-only map viewer of a pipeline run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, bounded, console, err_console, state


@app.command("serve")
def serve_cmd(
    run_dir: Path = typer.Argument(..., help="Output directory of `permafrost run`."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8000, "--port", callback=bounded("port"),
                             help="TCP port (0: a free one)."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Allow a --host other than 127.0.0.1: the run's "
                                           "maps are then served to other machines."),
    dem: Path | None = typer.Option(None, "--dem",
                                    help="DEM for the hillshade (default: the run's DEM)."),
) -> None:
    """Serve the run's maps (PZI, zones, uncertainty, scenarios and their change, priors,
    agreement, labels, kinematics) over a hillshade in a browser; read-only, offline.
    With -v every request is logged."""
    from permafrost.workflows.serve import is_local_host, make_server

    server = make_server(run_dir, host=host, port=port, allow_remote=allow_remote, dem=dem,
                         verbose=state.verbose > 0)
    h, p = str(server.server_address[0]), int(server.server_address[1])
    if not is_local_host(host):
        err_console.print(f"[bold yellow]Warning:[/] serving {run_dir} on {h}:{p}, reachable "
                          "from other machines; no authentication, no encryption.")
    for line in server.run.notes + server.run.refused:
        err_console.print(f"note: {line}")
    shown = "127.0.0.1" if h in ("0.0.0.0", "::") else h
    console.print(f"Serving {run_dir} at http://{shown}:{p}/ (read-only; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("Stopped.")
    finally:
        server.server_close()
