"""The operator audit log is MAC-chained under a key the master key wraps: whoever can write the home
but lacks the master key cannot rewrite it and recompute the chain."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from faceward.security.crypto import Keyring
from faceward.security.operator_log import OperatorLog, OperatorLogError


def written(path: Path, keyring: Keyring) -> OperatorLog:
    log = OperatorLog(path, keyring=keyring, command="tenant create")
    log.append("tenant.create", tenant_id="t_1", details={"keys": 1})
    log.append("tenant.suspend", tenant_id="t_1", command="tenant suspend")
    log.append("master_key.rotate", tenant_id=None, details={"rotated": 1})
    return log


def test_entries_verify_under_the_master_key_and_the_key_file_is_private(tmp_path: Path) -> None:
    keyring = Keyring(os.urandom(32))
    log = written(tmp_path / OperatorLog.FILE_NAME, keyring)
    assert [e.action for e in OperatorLog(log.path, keyring=keyring).entries()] == [
        "tenant.create", "tenant.suspend", "master_key.rotate"]
    assert log.key_path.stat().st_mode & 0o077 == 0
    assert len({e.hash for e in log.entries()}) == 3


def test_a_rewritten_entry_with_a_recomputed_hash_chain_is_caught(tmp_path: Path) -> None:
    """The attack an unkeyed chain allows: edit an entry, then recompute every sha256 after it."""
    keyring = Keyring(os.urandom(32))
    log = written(tmp_path / OperatorLog.FILE_NAME, keyring)
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    lines[0]["tenant_id"] = "t_someone_else"
    prev = "0" * 64
    for line in lines:
        line["prev"] = prev
        body = {k: v for k, v in line.items() if k not in {"prev", "hash"}}
        line["hash"] = prev = hashlib.sha256(prev.encode() + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    log.path.write_text("".join(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n" for line in lines))
    with pytest.raises(OperatorLogError, match="breaks at line 1"):
        OperatorLog(log.path, keyring=keyring).entries()


def test_a_dropped_middle_entry_is_caught(tmp_path: Path) -> None:
    keyring = Keyring(os.urandom(32))
    log = written(tmp_path / OperatorLog.FILE_NAME, keyring)
    first, _, third = log.path.read_text().splitlines()
    log.path.write_text(f"{first}\n{third}\n")
    with pytest.raises(OperatorLogError, match="breaks at line 2"):
        log.entries()


def test_a_missing_key_file_or_another_master_key_fails_verification(tmp_path: Path) -> None:
    log = written(tmp_path / OperatorLog.FILE_NAME, Keyring(os.urandom(32)))
    with pytest.raises(OperatorLogError, match="does not open"):
        OperatorLog(log.path, keyring=Keyring(os.urandom(32))).entries()
    log.key_path.unlink()
    with pytest.raises(OperatorLogError, match="key file"):
        OperatorLog(log.path, keyring=Keyring(os.urandom(32))).entries()
    with pytest.raises(OperatorLogError, match="key file"):  # nor can a new key be slipped under old entries
        OperatorLog(log.path, keyring=Keyring(os.urandom(32))).append("tenant.delete", tenant_id="t_1")


def test_master_key_rotation_rewraps_the_log_key_and_the_chain_still_verifies(tmp_path: Path) -> None:
    old, new = Keyring(os.urandom(32)), Keyring(os.urandom(32))
    log = written(tmp_path / OperatorLog.FILE_NAME, old)
    assert log.rewrap_key(new) is True
    log.append("tenant.resume", tenant_id="t_1")
    assert len(OperatorLog(log.path, keyring=new).entries()) == 4
    assert OperatorLog(log.path, keyring=old).rewrap_key(new) is False  # an interrupted rotation, run again
    with pytest.raises(OperatorLogError, match="does not open"):
        OperatorLog(log.path, keyring=old).entries()


def test_an_empty_log_needs_no_key(tmp_path: Path) -> None:
    log = OperatorLog(tmp_path / OperatorLog.FILE_NAME, keyring=Keyring(os.urandom(32)))
    assert log.entries() == [] and not log.key_path.exists()
