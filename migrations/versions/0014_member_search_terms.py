"""member search terms: the words of every member's name and headline, each with the
member's name, kept by triggers on `member` (PostgreSQL only)

Member search finds members whose name or headline contains every word asked, ordered by
name. The trigram indexes find them, but ordered by name only after reading and sorting
every one of them: 1,835 heap rows and ~5 ms for the most common first name of 100,000
members, ~50 ms for a word of many headlines. Here each member's words (lower case,
split on whitespace) are stored with the member's name, so the members having a word
come from one index in name order, without reading their rows; `search_term` holds each
word once, so that the words containing what was asked are found in a small table.

A word asked (no whitespace in it) that occurs in a name or headline lies inside one of
its words, so the terms find every member the search may show, and the search checks
each one it shows against the name and headline themselves (linkmsg/services/
directory.py). `search_term` only grows: a word nobody has any more finds nobody.

Terms are kept by triggers rather than by the services, so that no way of writing a
name or headline (a form, an admin, a bulk load) can forget them. Each member's terms
are written in the order of the words, so that two members saved at once (each in its
own transaction, as the app saves them) with the same new words wait for each other
rather than deadlock; a transaction saving several members can still deadlock with
another, and PostgreSQL then aborts one of them.

`member` is locked against writes while the terms are first filled and the triggers
created: a member saved meanwhile would have had no terms until their next change.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 13:20:00.000000

"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The separators are the ASCII whitespace Python's str.split() also splits on, so a word
# of a query never spans two terms.
TERMS = (
    "SELECT DISTINCT term FROM regexp_split_to_table("
    # An E'' string: the same pattern whatever standard_conforming_strings says.
    "lower({row}.name || ' ' || {row}.headline), E'[ \\\\t\\\\n\\\\r\\\\f\\\\v]+') AS term"
    " WHERE term <> '' ORDER BY term"
)

REFRESH = f"""
CREATE FUNCTION member_terms_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM member_term WHERE member_id = OLD.id;
    END IF;
    INSERT INTO search_term (term) {TERMS.format(row="NEW")} ON CONFLICT (term) DO NOTHING;
    INSERT INTO member_term (term, name, member_id)
        SELECT term, NEW.name, NEW.id FROM ({TERMS.format(row="NEW")}) AS terms;
    RETURN NULL;
END $$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite searches the names and headlines themselves
    op.execute("LOCK TABLE member IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "CREATE TABLE search_term (term text NOT NULL,"
        " CONSTRAINT pk_search_term PRIMARY KEY (term))"
    )
    op.execute("CREATE INDEX ix_search_term_trgm ON search_term USING gin (term gin_trgm_ops)")
    op.execute(
        "CREATE TABLE member_term ("
        " term text NOT NULL,"
        " name varchar(100) NOT NULL,"
        " member_id integer NOT NULL,"
        " CONSTRAINT pk_member_term PRIMARY KEY (term, name, member_id),"
        " CONSTRAINT fk_member_term_member_id_member FOREIGN KEY (member_id)"
        " REFERENCES member (id) ON DELETE CASCADE)"
    )
    op.execute("CREATE INDEX ix_member_term_member_id ON member_term (member_id)")
    every = f"member, LATERAL ({TERMS.format(row='member')}) AS terms"
    op.execute(f"INSERT INTO search_term (term) SELECT DISTINCT term FROM {every}")
    op.execute(
        "INSERT INTO member_term (term, name, member_id)"
        f" SELECT term, member.name, member.id FROM {every}"
    )
    op.execute(REFRESH)
    op.execute(
        "CREATE TRIGGER member_terms_added AFTER INSERT ON member FOR EACH ROW"
        " EXECUTE FUNCTION member_terms_refresh()"
    )
    op.execute(
        "CREATE TRIGGER member_terms_changed AFTER UPDATE ON member FOR EACH ROW"
        " WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.headline IS DISTINCT FROM NEW.headline)"
        " EXECUTE FUNCTION member_terms_refresh()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS member_terms_changed ON member")
    op.execute("DROP TRIGGER IF EXISTS member_terms_added ON member")
    op.execute("DROP FUNCTION IF EXISTS member_terms_refresh()")
    op.execute("DROP TABLE IF EXISTS member_term")
    op.execute("DROP TABLE IF EXISTS search_term")
