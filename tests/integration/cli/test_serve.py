"""``faceward serve``: refuses to start without a real master key; ``--init`` sets up a home and a first tenant."""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from faceward.cli import serve as serve_module
from faceward.cli.main import app

runner = CliRunner()


class FakeUvicorn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def run(self, app: Any, **kwargs: Any) -> None:
        self.calls.append({"app": app, **kwargs})


@pytest.fixture()
def uvicorn(monkeypatch: pytest.MonkeyPatch) -> FakeUvicorn:
    import uvicorn as real

    fake = FakeUvicorn()
    monkeypatch.setattr(real, "run", fake.run)
    return fake


def get(app: Any, path: str, token: str | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize(
    "key",
    [None, "changeme", "your-master-key-here", base64.b64encode(bytes(32)).decode(), base64.b64encode(b"ab" * 16).decode(), "!!notbase64!!"],
)
def test_refuses_to_start_without_a_real_master_key(
    home: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn, key: str | None
) -> None:
    if key is None:
        monkeypatch.delenv("FACEWARD_MASTER_KEY")
    else:
        monkeypatch.setenv("FACEWARD_MASTER_KEY", key)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "master key" in lines[0], result.output
    assert "Traceback" not in result.output
    assert uvicorn.calls == []


def test_refuses_a_placeholder_key_file(home: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn) -> None:
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    home.mkdir(parents=True)
    key_file = home / "master.key"
    key_file.write_text("changeme\n")
    key_file.chmod(0o600)
    result = runner.invoke(app, ["serve", "--init"])  # --init never overwrites a key file
    assert result.exit_code != 0 and "placeholder" in result.output
    assert key_file.read_text() == "changeme\n" and uvicorn.calls == []


def test_init_then_serve(home: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn) -> None:
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    result = runner.invoke(app, ["serve", "--init", "--host", "127.0.0.1", "--port", "8123"])
    assert result.exit_code == 0, result.output
    key_file = home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in result.output
    token = next(line.strip() for line in result.output.splitlines() if line.strip().startswith("fw_"))
    assert "http://127.0.0.1:8123/docs" in result.output
    [call] = uvicorn.calls
    assert call["host"] == "127.0.0.1" and call["port"] == 8123 and call["server_header"] is False
    served = call["app"]
    assert get(served, "/v1/keys", token).status_code == 200
    assert get(served, "/v1/keys").status_code == 401
    served.state.services.gallery.store.close()

    again = runner.invoke(app, ["serve", "--init"])  # the key is shown once: a second run makes none
    assert again.exit_code == 0, again.output
    assert "fw_" not in again.output and "tenants exist already" in again.output
    plain = runner.invoke(app, ["serve"])
    assert plain.exit_code == 0 and "fw_" not in plain.output and "/docs" in plain.output
    for call in uvicorn.calls:
        call["app"].state.services.gallery.store.close()


def test_the_embedded_default_home_initialises_itself(home: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn) -> None:
    monkeypatch.delenv("FACEWARD_MASTER_KEY")
    monkeypatch.setattr(serve_module, "default_home", lambda: home)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert (home / "master.key").exists() and "fw_" in result.output
    uvicorn.calls[0]["app"].state.services.gallery.store.close()


def test_a_cli_home_gets_an_admin_key_for_its_local_tenant(home: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn) -> None:
    from faceward.bootstrap import init_home, open_gallery
    from faceward.settings import load_settings

    settings = load_settings()
    init_home(settings)
    gallery = open_gallery(settings)
    local = gallery.create_tenant("local")  # what `faceward enroll` does on first use
    (home / "local-tenant").write_text(local + "\n")
    gallery.store.close()
    result = runner.invoke(app, ["serve", "--init"])
    assert result.exit_code == 0, result.output
    assert f"tenant {local}" in result.output and "fw_" in result.output
    uvicorn.calls[0]["app"].state.services.gallery.store.close()


def test_refuses_a_model_without_a_licence_on_record(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uvicorn: FakeUvicorn
) -> None:
    import json

    from tests.unit.vision.tiny_recognizer import write_recognizer

    manifest = write_recognizer(tmp_path / "model")
    data = json.loads(manifest.read_text())
    del data["licence"]
    manifest.write_text(json.dumps(data))
    monkeypatch.setenv("FACEWARD_RECOGNIZER_MANIFEST", str(manifest))
    result = runner.invoke(app, ["serve", "--init"])
    assert result.exit_code == 2 and not uvicorn.calls
    assert result.output.count("\n") == 1 and "states no 'licence'" in result.output
