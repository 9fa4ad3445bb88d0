"""Compiled statements found by their key object's identity (linkmsg/compiled.py).

SQLAlchemy hashed a statement's whole cache key (a tree of thousands of tuples for the
session loader's) on every execution to find its compiled form; a statement kept and run
again is now found by identity, and everything else as before."""

from sqlalchemy import bindparam

from linkmsg.compiled import IdentityCache
from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import sessions

from .factories import make_member


def cache(app) -> IdentityCache:
    with app.app_context():
        found = db.engine.get_execution_options()["compiled_cache"]
    assert isinstance(found, IdentityCache)
    return found


def compiled_of(statement, **params):
    """The compiled form the app's engine ran `statement` with."""
    return db.session.connection().execute(statement, params).context.compiled


def test_a_kept_statement_run_again_is_found_by_identity(app):
    found = cache(app)
    with app.app_context():
        member = make_member("Ava Ames")
        first = compiled_of(sessions._LOAD, session_id=1, member_id=member.id)
        tree = sessions._LOAD._generate_cache_key().key
        assert [k for k, _ in found.by_identity.values() if k[1] is tree], "remembered"
        # Asked again, the LRU of full keys is not consulted: the identity answers.
        found.entries.clear()
        again = compiled_of(sessions._LOAD, session_id=2, member_id=member.id)
    assert again is first


def test_an_equal_statement_built_anew_gets_the_same_compiled_form(app):
    found = cache(app)

    def build():
        return db.select(Member.id).where(Member.handle == bindparam("handle"))

    with app.app_context():
        first = compiled_of(build(), handle="x")
        remembered = len(found.by_identity)
        second = compiled_of(build(), handle="y")  # a new tree, equal to the first
        assert second is first
        # A different statement is compiled on its own.
        other = compiled_of(db.select(Member.name).where(Member.id == bindparam("id")), id=1)
        assert other is not first and other.string != first.string
    assert len(found.by_identity) > remembered


def test_the_identity_map_stays_bounded(app_factory):
    app = app_factory()
    found = cache(app)
    found.most = 8
    with app.app_context():
        for n in range(30):  # thirty statements of different shapes
            compiled_of(db.select(Member.id).where(*(Member.id > k for k in range(n + 1))))
    assert 0 < len(found.by_identity) <= 8
    assert len(found) >= 30  # the full LRU keeps them all, as SQLAlchemy's own did
