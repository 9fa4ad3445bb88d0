"""Demo members for `flask seed-demo`: a small, realistic network to try LinkMsg with."""

from __future__ import annotations

import random

from werkzeug.security import generate_password_hash

from .extensions import db
from .models import Member
from .services import accounts, notifications

DEMO_PASSWORD = "maple-harbor-lantern"
DEMO_DOMAIN = "demo.linkmsg.test"

PEOPLE = [
    ("Ava Chen", "Product Manager at Northwind", "San Francisco, USA"),
    ("Ben Okafor", "Senior Backend Engineer at Fabrikam", "Lagos, Nigeria"),
    ("Carla Mendes", "UX Researcher at Contoso", "Lisbon, Portugal"),
    ("Dana Whitfield", "Talent Partner at Tailspin", "London, UK"),
    ("Elias Berg", "Data Scientist at Litware", "Stockholm, Sweden"),
    ("Fatima Zahra", "Engineering Manager at Adatum", "Casablanca, Morocco"),
    ("Gabriel Ruiz", "Founder at Brightline Labs", "Mexico City, Mexico"),
    ("Hana Sato", "Designer at Wingtip", "Tokyo, Japan"),
    ("Ivan Petrov", "Site Reliability Engineer at Proseware", "Sofia, Bulgaria"),
    ("Julia Novak", "Head of Marketing at Relecloud", "Prague, Czechia"),
    ("Kwame Mensah", "Solutions Architect at Fourth Coffee", "Accra, Ghana"),
    ("Lena Fischer", "Recruiter at Woodgrove", "Berlin, Germany"),
    ("Marco Rossi", "Frontend Developer at Alpine Ski House", "Milan, Italy"),
    ("Nadia Haddad", "Security Engineer at Coho", "Beirut, Lebanon"),
    ("Oscar Lindqvist", "CTO at Margie's Travel", "Oslo, Norway"),
    ("Priya Raman", "Machine Learning Engineer at Lucerne", "Bengaluru, India"),
    ("Quinn Murphy", "Sales Director at Trey Research", "Dublin, Ireland"),
    ("Rosa Alvarez", "Operations Lead at Humongous", "Madrid, Spain"),
    ("Samir Khan", "Mobile Developer at Blue Yonder", "Karachi, Pakistan"),
    ("Tara Nguyen", "Product Designer at Graphic Design Institute", "Hanoi, Vietnam"),
    ("Umar Farouk", "DevOps Engineer at VanArsdel", "Cairo, Egypt"),
    ("Valentina Costa", "HR Business Partner at Wide World Importers", "São Paulo, Brazil"),
    ("Wei Zhang", "Staff Engineer at Southridge Video", "Shanghai, China"),
    ("Ximena Torres", "Content Strategist at Consolidated Messenger", "Bogotá, Colombia"),
    ("Yusuf Demir", "QA Lead at Lamna Healthcare", "Istanbul, Türkiye"),
    ("Zoe Martin", "Account Executive at Fineartschool", "Paris, France"),
    ("Aiden Walsh", "Student at Trinity College", "Dublin, Ireland"),
    ("Bianca Ionescu", "Product Owner at Datum", "Bucharest, Romania"),
    ("Chidi Eze", "Cloud Consultant at Nod Publishers", "Abuja, Nigeria"),
    ("Daria Kowalska", "Technical Writer at School of Fine Art", "Warsaw, Poland"),
]


def email_for(name: str) -> str:
    return accounts.slugify(name).replace("-", ".") + "@" + DEMO_DOMAIN


def seed(rng: random.Random | None = None) -> list[Member] | None:
    """Create the demo network once. Returns the members, or None when already seeded."""
    rng = rng or random.Random(2026)
    if db.session.scalar(db.select(Member.id).limit(1)) is not None:
        return None
    password_hash = generate_password_hash(DEMO_PASSWORD)
    members = []
    for name, headline, location in PEOPLE:
        member = Member(
            email=email_for(name),
            password_hash=password_hash,
            handle=accounts.slugify(name),
            name=name,
            headline=headline,
            location=location,
            about=f"Hi, I'm {name.split()[0]}. {headline}, based in {location.split(',')[0]}.",
        )
        db.session.add(member)
        members.append(member)
    db.session.flush()
    for hook in SEED_HOOKS:
        hook(members, rng)
    db.session.commit()
    _seed_threads(members)
    return members


CONVERSATIONS = [
    (
        1,
        [
            (1, "Hi Ava! Are you still looking for a backend engineer for the payments team?"),
            (0, "Hi Ben — yes, we are. Would you be up for a chat this week?"),
            (
                1,
                "Sure. Thursday afternoon works for me.\nHere's my portfolio: https://example.com/ben",
            ),
        ],
    ),
    (
        2,
        [
            (2, "Thanks for sharing the research plan, it looks great."),
            (0, "Glad it helps! Let me know if the interview guide needs changes."),
        ],
    ),
    (
        29,
        [
            (29, "Hello Ava, I'm writing the onboarding docs. Could you review the first draft?"),
        ],
    ),
]


def _seed_threads(members: list[Member]) -> None:
    """A few conversations for the first demo member, through the messaging service."""
    from .services import messaging

    first = members[0]
    for other_index, lines in CONVERSATIONS:
        other = members[other_index]
        for who, body in lines:
            sender, recipient = (first, other) if who == 0 else (other, first)
            messaging.start(sender, recipient, body)


def _seed_network(members: list[Member], rng: random.Random) -> None:
    """Clusters of colleagues (neighbours in the list) plus a few long links, so that the
    demo shows 1st, 2nd and 3rd degrees and members out of network; and some invitations
    waiting for the first demo member."""
    from .models import Connection, Invitation

    n = len(members)
    pairs = set()
    for i in range(n):
        for step in (1, 2):
            pairs.add(tuple(sorted((i, (i + step) % n))))
    for _ in range(n // 3):
        a, b = rng.sample(range(n), 2)
        pairs.add(tuple(sorted((a, b))))
    # Keep a few members out of the first member's reach for demos of the locked button.
    pairs = {p for p in pairs if not (0 in p and abs(p[0] - p[1]) not in (1, 2, n - 1, n - 2))}
    for a, b in sorted(pairs):
        ma, mb = members[a], members[b]
        db.session.add_all(
            [
                Connection(member_id=ma.id, other_id=mb.id),
                Connection(member_id=mb.id, other_id=ma.id),
            ]
        )
    first = members[0]
    for j in (5, 9):
        sender = members[j]
        if tuple(sorted((0, j))) in pairs:
            continue
        low, high = sorted((sender.id, first.id))
        invitation = Invitation(
            sender_id=sender.id,
            recipient_id=first.id,
            pair_low=low,
            pair_high=high,
            note=f"Hi {first.name.split()[0]}, we met at the product meetup — let's connect!",
        )
        db.session.add(invitation)
        db.session.flush()
        notifications.notify(
            first.id, notifications.INVITATION_RECEIVED, actor_id=sender.id, ref_id=invitation.id
        )


# Areas that add to the demo (threads, ...) register a hook:
# function(members, rng), called inside the seeding transaction.
SEED_HOOKS: list = [_seed_network]
