"""The `immich-aio` command: one root that mounts the patcher, ML service, database, e2e and deploy CLIs."""

import typer

from db_extension.cli import app as db_app
from deploy.cli import app as deploy_app
from e2e.cli import e2e, e2e_switch
from gateway.cli import app as gateway_app
from immich_aio.generate_cli import generate_command
from ml_service.cli import serve
from ml_service.models_cli import app as models_app
from patcher.cli import app as patcher_app

app = typer.Typer(
    help="Make Immich excellent at Chinese search: patch an Immich checkout, serve ML, manage the database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# patch, status, revert, check, verify, list: the patcher's commands sit at the top level.
app.add_typer(patcher_app)
app.command("generate")(generate_command)
app.command("serve")(serve)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(gateway_app, name="gateway")
app.command("e2e")(e2e)
app.command("e2e-switch")(e2e_switch)
# build, compose, upstream, ci-template
app.add_typer(deploy_app)
