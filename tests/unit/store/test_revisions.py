"""The schema revisions form one chain from the first to the head, each file named after its revision."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from faceward.store.migrate import alembic_config, head


def test_the_revisions_are_one_chain_in_rising_order() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [head()]
    chain = list(scripts.walk_revisions())  # head first, down to the base
    assert chain[0].revision == head() and chain[-1].down_revision is None
    for newer, older in zip(chain, chain[1:]):
        assert newer.down_revision == older.revision and newer.revision > older.revision
    for revision in chain:
        assert revision.path.rsplit("/", 1)[-1].startswith(f"{revision.revision}_")
    assert "0007" not in {r.revision for r in chain}  # withdrawn before it landed: never reused
