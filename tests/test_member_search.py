"""Member search through the terms of names and headlines (PostgreSQL, migration 0014).

On PostgreSQL a search with a word of three characters or more finds its members through
`member_term` (each member's words with their name, kept by triggers) rather than through
the trigram indexes of `member`. Both ways must answer the same: the statement of the
terms is compared with the plain one on the same data, page by page, and the triggers
must follow every change of a name or headline.
"""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import text

from linkmsg.extensions import db
from linkmsg.models import Member, utcnow
from linkmsg.services import blocking, directory, network
from linkmsg.text import like_pattern

from .factories import make_member

FIRST = ["Jonas", "Jonathan", "Åsa", "Zoë", "Ana", "Anabel", "Dan", "Dana", "Ole", "İlkay"]
LAST = ["Jonasson", "Berg", "Núñez", "O'Brien", "Smith-Jones", "van Dam", "Lund", "Ng"]
HEADLINE_WORDS = [
    "Engineer", "engineering", "Manager", "at", "Jonas&Co", "100%", "data_science",
    "Talent", "Partner", "Kite", "MEDIA", "back\\slash", "Ünïcode", "an",
]  # fmt: skip


def _is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def _members(rng: random.Random, count: int) -> list[Member]:
    members = []
    for n in range(count):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if rng.random() < 0.2:
            name = name.upper() if rng.random() < 0.5 else name.lower()
        headline = " ".join(rng.choice(HEADLINE_WORDS) for _ in range(rng.randint(0, 5)))
        member = Member(
            email=f"search{n}@example.test",
            password_hash="not-a-hash",
            handle=f"search-{n}",
            name=name,
            headline=headline,
        )
        members.append(member)
    db.session.add_all(members)
    db.session.commit()
    return members


def _both_ways(viewer: int, q: str, after=None, limit: int = 5):
    """The members the plain statement finds, and those the terms' statement finds."""
    words = q.split()
    params = {f"word_{n}": like_pattern(word[:100]) for n, word in enumerate(words)}
    params["viewer"] = viewer
    if after is not None:
        params["after_name"], params["after_id"] = after
    lead = max(range(len(words)), key=lambda n: len(words[n]))
    plain = directory._search_statement(len(words), after is not None, limit, None)
    terms = directory._search_by_terms(len(words), lead, after is not None, limit, None)
    return (
        [row.id for row in db.session.execute(plain, params)],
        [row.id for row in db.session.execute(terms, params)],
    )


QUERIES = [
    "jonas", "JONAS", "onas", "jonasson", "Jon", "ana", "anab", "zoë", "ZOË", "åsa",
    "núñez", "o'brien", "smith-jones", "van dam", "dan", "engineer", "ENGINEERING",
    "jonas engineer", "engineer jonas", "jonas&co", "100%", "data_science", "ata_sc",
    "slash", "back\\slash", "ünïcode", "ilkay", "lkay", "manager at", "talent partner kite",
    "nobody", "xyz", "jonas nobody",
]  # fmt: skip


def test_the_terms_find_what_the_names_and_headlines_do(ctx):
    if not _is_postgresql():
        pytest.skip("the terms are PostgreSQL's; SQLite searches the names themselves")
    rng = random.Random(20261202)
    members = _members(rng, 300)
    viewer = members[0].id
    blocking.block(members[1].id, viewer)
    blocking.block(viewer, members[2].id)
    db.session.get(Member, members[3].id).suspended_at = utcnow()
    db.session.commit()
    for q in QUERIES:
        plain, terms = _both_ways(viewer, q, limit=400)
        assert terms == plain, q
        # And page by page, with the cursor each page gives.
        pages, after = [], None
        while True:
            plain_page, terms_page = _both_ways(viewer, q, after=after, limit=7)
            assert terms_page == plain_page, (q, after)
            pages += terms_page[:7]
            if len(terms_page) <= 7:
                break
            last = db.session.get(Member, terms_page[6])
            after = (last.name, last.id)
        assert pages == plain, q
    # The data had something to find for most of them.
    assert sum(bool(_both_ways(viewer, q, limit=400)[0]) for q in QUERIES) >= 25


def test_a_new_name_or_headline_is_found_at_once_and_the_old_one_no_more(ctx):
    me = make_member("Searcher")
    renamed = make_member("Quillon Abernathy", headline="Cartographer at Examplia")
    names = lambda q: [m.name for m in network.search(me.id, q).members]  # noqa: E731
    assert names("quillon") == ["Quillon Abernathy"]
    assert names("cartographer") == ["Quillon Abernathy"]

    member = db.session.get(Member, renamed.id)
    member.name = "Marisol Abernathy"
    member.headline = "Surveyor"
    db.session.commit()
    assert names("quillon") == []
    assert names("cartographer") == []
    assert names("marisol") == ["Marisol Abernathy"]
    assert names("surveyor") == ["Marisol Abernathy"]
    assert names("abernathy surveyor") == ["Marisol Abernathy"]

    db.session.delete(db.session.get(Member, renamed.id))
    db.session.commit()
    assert names("marisol") == []
    if _is_postgresql():
        left = db.session.scalar(
            text("SELECT count(*) FROM member_term WHERE member_id = :id"), {"id": renamed.id}
        )
        assert left == 0


def test_members_saved_at_once_with_the_same_new_words_all_commit(app):
    """Members saved together whose names and headlines bring the same new words: every
    one commits and each word is kept once (a transaction that finds a word just written
    by another waits for it and leaves it be; words are written in one order, so two
    such transactions wait for each other rather than deadlock)."""
    with app.app_context():
        if not _is_postgresql():
            pytest.skip("the terms' triggers are PostgreSQL's")
    workers, rounds = 6, 8
    barrier = threading.Barrier(workers)
    errors = []

    def save(worker: int) -> None:
        rng = random.Random(worker)
        with app.app_context():
            for round_ in range(rounds):
                words = [f"Zyx{round_}w{n:02d}" for n in range(10)]
                chosen = rng.sample(words, len(words))  # each in its own order
                member = Member(
                    email=f"at-once-{worker}-{round_}@example.test",
                    password_hash="not-a-hash",
                    handle=f"at-once-{worker}-{round_}",
                    name=" ".join(chosen[:2]),
                    headline=" ".join(chosen[2:]),
                )
                try:
                    barrier.wait(timeout=20)  # released together, round after round
                    db.session.add(member)
                    db.session.commit()
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(repr(error))
                    db.session.rollback()
            db.session.remove()

    threads = [threading.Thread(target=save, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with app.app_context():
        found = db.session.execute(
            text("SELECT term FROM search_term WHERE term LIKE 'zyx%' ORDER BY term")
        ).scalars()
        expected = sorted(f"zyx{r}w{n:02d}" for r in range(rounds) for n in range(10))
        assert list(found) == expected
        viewer = make_member("Viewer")
        assert len(network.search(viewer.id, "zyx3w07", limit=50).members) == workers
