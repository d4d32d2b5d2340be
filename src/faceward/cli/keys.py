"""Operator commands on the master key: rotate it, retire an old one, move it into an HSM.

They run on the server, not through the API; every act lands in the operator log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from faceward.bootstrap import key_file
from faceward.cli.acting import open_services
from faceward.cli.common import JsonOpt, command_group, emit_json, fail, friendly, out, settings
from faceward.cli.operator import accounts
from faceward.security.crypto import Keyring, load_master_key
from faceward.security.keyfile import FileKeyring, rotate_online
from faceward.security.pkcs11 import Pkcs11Keyring, open_keyring
from faceward.settings import Kms

keys_app = command_group(help="Master key operations.")



@keys_app.command("rotate-master")
def rotate_master(
    new_key_file: Annotated[
        Optional[Path], typer.Option("--new-key-file", help="The new master key (base64, mode 0600); not with an HSM.")
    ] = None,
    online: Annotated[bool, typer.Option("--online", help="Key file: rotate while servers keep serving.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Re-wrap every tenant key under a new master key.

    With FACEWARD_KMS=pkcs11 it runs online: a new key is generated in the token and every tenant
    key re-wrapped under it while the service keeps serving (old and new both unwrap). With the key
    file, --online does the same through <key file>.next, which servers follow; the old key is kept
    as <key file>.retired-<time>. With --new-key-file, stop the service and restart it with the new
    key (e.g. head -c32 /dev/urandom | base64). Running it again after an interruption
    finishes the job. Backups taken before the rotation still need the old master key: keep it as
    long as they are kept.
    """
    _rotate_master(new_key_file, online, as_json)


@friendly
def _rotate_master(new_key_file: Path | None, online: bool, as_json: bool) -> None:
    service = accounts("keys rotate-master")
    keyring = service.gallery.keyring
    if online and not isinstance(keyring, Pkcs11Keyring):
        if new_key_file is not None or not isinstance(keyring, FileKeyring):
            fail("--online rotates the key file itself: drop --new-key-file, and unset FACEWARD_MASTER_KEY")
        done = rotate_online(keyring, service.rotate_master)
        if as_json:
            emit_json(done)
            return
        out.print(f"re-wrapped {done['rotated']} tenant keys under the new key in {done['key_file']}; no restart "
                  f"needed; the old key is kept in {done['retired_key_file']} for backups made before now", markup=False)
        return
    if isinstance(keyring, Pkcs11Keyring):
        if new_key_file is not None:
            fail("FACEWARD_KMS=pkcs11: the new master key is generated inside the token; drop --new-key-file")
        old = keyring.current_label()
        label = keyring.generate()
        counts = service.rotate_master(keyring.pinned(label))
        if as_json:
            emit_json({**counts, "old_key": old, "new_key": label})
            return
        out.print(f"re-wrapped {counts['rotated']} tenant keys under {label} in the token (was {old}); no restart needed",
                  markup=False)
        out.print(f"keep {old} in the token while backups made before now are kept", markup=False)
        return
    if new_key_file is None:
        fail("--new-key-file is required with a master key file (FACEWARD_KMS=file)")
    new_key = load_master_key(None, new_key_file)
    if getattr(keyring, "_master", None) == new_key:
        fail("the new master key is the one in use")
    counts = service.rotate_master(Keyring(new_key))
    if as_json:
        emit_json({**counts, "new_key_file": new_key_file})
        return
    out.print(f"re-wrapped {counts['rotated']} tenant keys ({counts['already']} already under the new key)", markup=False)
    out.print(f"now point FACEWARD_MASTER_KEY_FILE at {new_key_file} (or unset FACEWARD_MASTER_KEY) and restart", markup=False)


@keys_app.command("retire-master")
def retire_master(
    label: Annotated[str, typer.Argument(help="The old master key's label, e.g. faceward-master.1.")],
    yes: Annotated[bool, typer.Option("--yes", help="Backups wrapped under it become unreadable: confirm.")] = False,
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Delete an old master key from the HSM token once nothing live is wrapped under it.

    After `keys rotate-master`, the old key only opens backups made before the rotation. Retire it
    when those have aged out (`faceward backup --max-age`): it is refused while any tenant key or the
    operator log's key is still wrapped under it, and the current key can never be retired.
    """
    _retire_master(label, yes, as_json)


@friendly
def _retire_master(label: str, yes: bool, as_json: bool) -> None:
    service = accounts("keys retire-master")
    keyring = service.gallery.keyring
    if not isinstance(keyring, Pkcs11Keyring):
        fail("retire-master is for master keys in an HSM (FACEWARD_KMS=pkcs11); a key file is retired by deleting it")
    if not yes:
        fail(f"backups wrapped under {label} can never be restored once it is retired; add --yes to retire it")
    done = service.retire_master(keyring, label)
    if as_json:
        emit_json(done)
        return
    out.print(f"retired {label}; the token holds {', '.join(done['remaining'])}", markup=False)


@keys_app.command("migrate")
def keys_migrate(
    to: Annotated[Kms, typer.Option("--to", help="Where the master key goes: pkcs11 (the token in FACEWARD_PKCS11_*).")],
    as_json: Annotated[bool, JsonOpt] = False,
) -> None:
    """Move the home off its master key file: every tenant key is re-wrapped inside the HSM token.

    Stop the service first; afterwards start it with FACEWARD_KMS=pkcs11. The key file is left in
    place: move it offline (not delete it) while backups made before the migration are kept, since
    only it opens them.
    """
    _keys_migrate(to, as_json)


@friendly
def _keys_migrate(to: Kms, as_json: bool) -> None:
    if to is not Kms.PKCS11:
        fail("only --to pkcs11 is supported (moving a key out of an HSM would defeat it)")
    s = settings()
    source = s.model_copy(update={"kms": Kms.FILE})
    service = open_services(source, "keys migrate").accounts  # the gallery as it is today: unwrapping with the key file
    token = open_keyring(s)
    label, created = token.ensure()
    counts = service.rotate_master(token.pinned(label))
    data = {**counts, "hsm_key": label, "key_created": created, "old_key_file": str(key_file(s))}
    if as_json:
        emit_json(data)
        return
    out.print(f"re-wrapped {counts['rotated']} tenant keys under {label} in token {s.pkcs11_token} "
              f"({counts['already']} already there)", markup=False)
    out.print(f"now start the service with FACEWARD_KMS=pkcs11, and move {key_file(s)} offline: it still opens the "
              "backups made before now, and nothing else should", markup=False)
