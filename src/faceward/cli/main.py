"""The ``faceward`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from faceward import __version__
from faceward.bootstrap import init_home
from faceward.cli.common import JsonOpt, command_group, emit_json, emit_report, friendly, out, settings
from faceward.cli.evaluate import eval_app
from faceward.cli.enrolling import enroll, reenroll
from faceward.cli.gallery import search, subjects_app, verify
from faceward.cli.maintenance import backup, doctor, purge, restore, retention
from faceward.cli.models import models_app
from faceward.cli.keys import keys_app
from faceward.cli.operator import audit_app, tenant_app
from faceward.cli.serve import serve
from faceward.cli.signin import oidc_app

app = command_group(
    "faceward: consent-first face search. Matches are leads for human review, never identifications.",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"faceward {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """faceward: consent-first face search. Matches are leads for human review, never identifications."""


app.command()(enroll)
app.command()(reenroll)
app.command()(search)
app.command()(verify)
app.command()(doctor)
app.command()(backup)
app.command()(restore)
app.command()(purge)
app.command()(retention)
app.command()(serve)
app.add_typer(subjects_app, name="subjects")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(tenant_app, name="tenant")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(oidc_app, name="oidc")


@app.command()
def init(as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Create the embedded home: SQLite database and a master key file (mode 0600)."""
    _init(as_json)


@friendly
def _init(as_json: bool) -> None:
    s = settings()
    result = init_home(s)
    from_env = not result.hsm_key and s.master_key is not None  # it wins over any key file, and none is made
    data = {"home": str(result.home), "key_file": None if result.hsm_key or from_env else str(result.key_file),
            "key_created": result.key_created, "database_url": result.database_url, "hsm_key": result.hsm_key,
            "key_from_environment": from_env}
    if as_json:
        emit_json(data)
        return
    out.print(f"home: {result.home}", markup=False)
    if result.hsm_key:
        state = "created in" if result.key_created else "found in"
        out.print(f"master key {state} the HSM ({result.hsm_key}); it never leaves the token", markup=False)
    elif from_env:
        out.print("master key: FACEWARD_MASTER_KEY, from the environment (no key file is used)", markup=False)
    elif result.key_created:
        out.print(f"created master key file {result.key_file} (mode 0600): back it up apart from the data", markup=False)
    else:
        out.print(f"master key: {result.key_file}", markup=False)


@app.command()
def info(as_json: Annotated[bool, JsonOpt] = False) -> None:
    """Versions, engine, models and where data lives."""
    _info(as_json)


@friendly
def _info(as_json: bool) -> None:
    import dlib
    import onnxruntime

    from faceward.errors import FacewardError
    from faceward.scoring import model_card
    from faceward.vision.engine import EngineOptions, FaceEngine

    s = settings()
    data = {
        "version": __version__, "home": str(s.home), "database": s.db_url.split("@")[-1], "engine": s.engine.value,
        "detector": s.detector.value, "index_backend": s.index_backend.value, "dlib": dlib.__version__,
        "onnxruntime": onnxruntime.__version__, "onnx_providers_available": onnxruntime.get_available_providers(),
    }
    try:
        # Loads the models, so that the providers are those the sessions actually use (CUDA when present).
        engine = FaceEngine(EngineOptions.from_settings(s))
        data["face_engine"] = engine.describe()
        data["face_engine"]["calibration"] = model_card(engine.template_id, engine.provenance, engine.manifest)["calibration"]
    except FacewardError as exc:
        data["face_engine"] = {"error": exc.message}
    emit_report(data, as_json)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
