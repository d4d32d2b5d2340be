"""A SoftHSM2 token of its own for a test: a token directory under tmp_path, SOFTHSM2_CONF pointing at it."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULES = (Path("/usr/lib/softhsm/libsofthsm2.so"), Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"))
PIN = "4711-" + "fw"
SO_PIN = "so-" + "0815"


def softhsm_module() -> Path | None:
    return next((m for m in MODULES if m.exists()), None)


@dataclass(frozen=True)
class Token:
    module: Path
    label: str
    pin_file: Path
    conf: Path

    def env(self) -> dict[str, str]:
        """The variables that point faceward (and SoftHSM2) at this token."""
        return {
            "SOFTHSM2_CONF": str(self.conf), "FACEWARD_KMS": "pkcs11", "FACEWARD_PKCS11_MODULE": str(self.module),
            "FACEWARD_PKCS11_TOKEN": self.label, "FACEWARD_PKCS11_PIN_FILE": str(self.pin_file),
        }


def make_token(root: Path, label: str | None = None) -> Token:
    """Initialise a fresh token in ``root/tokens`` with the user PIN in ``root/pin`` (mode 0600)."""
    module = softhsm_module()
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)")
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    label = label or "fw-" + uuid.uuid4().hex[:8]
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)}, check=True, capture_output=True,
    )
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return Token(module, label, pin_file, conf)


@pytest.fixture()
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A fresh token, with SOFTHSM2_CONF and FACEWARD_KMS / FACEWARD_PKCS11_* set for this test."""
    token = make_token(tmp_path / "hsm")
    for name, value in token.env().items():
        monkeypatch.setenv(name, value)
    return token
