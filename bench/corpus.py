"""Message bodies and About texts for generated data: varied, professional, searchable.

Sentences are made from templates with slots (people, companies, cities, topics, tools,
ticket numbers ...), so that a full-text search finds common words in many messages and
rare ones (a ticket number, a tool, a company) in few. A pool of sentences is drawn once;
a message is one to four of them.
"""

from __future__ import annotations

import random

from .common import CITIES, COMPANY_KINDS, COMPANY_WORDS, FIRST_NAMES, LAST_NAMES, TITLES

TOPICS = (
    "the roadmap|quarterly planning|the hiring pipeline|the data warehouse|the pricing page|"
    "the onboarding flow|the mobile release|our analytics stack|the security review|"
    "the customer survey|the partnership deal|the marketing campaign|the board deck|"
    "the infrastructure budget|the sales forecast|the product launch|the design system|"
    "the migration plan|the incident review|the quarterly report|the offsite agenda|"
    "the vendor contract|the recruiting event|the API redesign|the compliance audit|"
    "the search relevance work|the checkout funnel|the churn analysis|the support backlog|"
    "the performance review cycle|the internship program|the cloud costs|the SOC 2 audit|"
    "the machine learning pilot|the dashboard refresh|the localisation project|"
    "the accessibility fixes|the warehouse automation|the supply chain study|"
    "the treasury process|the fundraising round|the investor update|the brand refresh|"
    "the newsletter|the podcast episode|the conference talk|the workshop materials|"
    "the reference check|the relocation package|the equity grant|the mentoring program"
).split("|")
TOOLS = (
    "Python Rust Go Kotlin Swift TypeScript React Vue Django Flask PostgreSQL Redis Kafka "
    "Kubernetes Terraform Airflow Snowflake BigQuery dbt Spark Tableau Looker Figma Jira "
    "Salesforce HubSpot Excel SAP Workday Notion Slack Grafana Prometheus Elasticsearch "
    "GraphQL gRPC Docker Ansible Jenkins GitHub GitLab Datadog Sentry Stripe Segment Mixpanel"
).split()
NOUNS = (
    "proposal contract deck invoice offer interview workshop conference webinar budget "
    "forecast prototype spreadsheet memo brief report timeline estimate shortlist agenda "
    "whitepaper case study job description portfolio benchmark postmortem RFC checklist "
    "playbook presentation survey summary draft outline mockup demo recording transcript"
).split(" ")
ADJECTIVES = (
    "great solid quick rough detailed final updated revised promising ambitious tight "
    "realistic excellent thoughtful careful useful interesting surprising clear candid"
).split()
VERBS = (
    "review share finalize schedule discuss revisit prioritise sign off on polish present "
    "circulate estimate test ship document benchmark prototype outline"
).split(" ")
DAYS = (
    "Monday|Tuesday|Wednesday|Thursday|Friday|tomorrow|next week|this afternoon|"
    "later today|early next month|after the holidays|before the offsite"
).split("|")
TIMES = "9:00|9:30|10:00|11:15|noon|1:30|2pm|3:45|4pm|5:30".split("|")
TICKET_PREFIXES = ("PRJ", "OPS", "HR", "FIN", "ENG", "MKT", "SEC", "DATA")

TEMPLATES = (
    "Hi {first}, thanks for connecting!",
    "Hi {first}, great to meet you at the {city} meetup.",
    "Are you free {day} at {time} to talk about {topic}?",
    "I just sent over the {noun} for {topic}; let me know what you think.",
    "We're hiring a {role} in {city}. Would you be interested in a chat?",
    "Our team at {company} is moving {topic} to {tool}.",
    "Congrats on the new role at {company}!",
    "Could you {verb} the {noun} before {day}?",
    "Thanks, the {adj} {noun} helped a lot with {topic}.",
    "I'll be in {city} {day}; coffee?",
    "Do you have experience with {tool} and {tool2}?",
    "The ticket is {ticket}, it covers {topic}.",
    "Following up on {ticket}: can we {verb} it {day}?",
    "{first} from {company} recommended I reach out about {topic}.",
    "Happy to introduce you to {first} {last}, who leads {topic} at {company}.",
    "Sorry for the slow reply, {topic} took over my week.",
    "The {noun} looks {adj}. A few comments inline.",
    "We benchmarked {tool} against {tool2} and {tool} won by {number}%.",
    "Budget for {topic} is about {number}k this quarter.",
    "Let's {verb} {topic} {day} at {time}.",
    "Would you be open to speaking at our {city} event about {tool}?",
    "I'm putting together a {noun} on {topic} and would value your input.",
    "Is the {role} position at {company} still open?",
    "Thanks for the referral! I have an interview with {company} {day}.",
    "Quick question about {topic}: who owns it now?",
    "Attached the {adj} {noun}; the numbers for {city} are on page {number}.",
    "We shipped the first version of {topic} with {tool}.",
    "Can you send me the recording of the {noun} on {topic}?",
    "Good luck with {topic}, and say hi to {first} for me.",
    "No worries at all, {day} works for me.",
    "Sounds good.",
    "Thanks!",
    "Perfect, see you then.",
    "Let me check with {first} and get back to you.",
    "I moved to {company} in {city} last month.",
    "Did you see the announcement about {topic}?",
    "Our {role} team is growing: {number} open roles in {city}.",
    "The {tool} upgrade broke {topic}; {ticket} has the details.",
    "I'd love your honest take on the {noun} before we {verb} it.",
    "Reminder: the {noun} for {topic} is due {day}.",
)

ABOUT_TEMPLATES = (
    "{role} with {number} years in {topic2}. Currently at {company} in {city}.",
    "I build things with {tool} and {tool2}. Interested in {topic2}.",
    "Helping teams at {company} with {topic2}. Previously {role} in {city}.",
    "Open to conversations about {topic2}, {tool} and mentoring.",
)


def _fill(template: str, rng: random.Random) -> str:
    company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
    tool, tool2 = rng.sample(TOOLS, 2)
    return template.format(
        first=rng.choice(FIRST_NAMES),
        last=rng.choice(LAST_NAMES),
        city=rng.choice(CITIES).split(",")[0],
        day=rng.choice(DAYS),
        time=rng.choice(TIMES),
        topic=rng.choice(TOPICS),
        topic2=rng.choice(TOPICS).removeprefix("the "),
        noun=rng.choice(NOUNS),
        adj=rng.choice(ADJECTIVES),
        verb=rng.choice(VERBS),
        role=rng.choice(TITLES),
        company=company,
        tool=tool,
        tool2=tool2,
        ticket=f"{rng.choice(TICKET_PREFIXES)}-{rng.randrange(100, 10000)}",
        number=rng.randrange(2, 40),
    )


class Corpus:
    """Message bodies, COPY-escaped (a blank line between paragraphs is `\\n\\n`)."""

    def __init__(self, rng: random.Random, pool_size: int = 40_000):
        self.rng = rng
        self.pool = [_fill(rng.choice(TEMPLATES), rng) for _ in range(pool_size)]

    def bodies(self, count: int):
        """`count` message bodies."""
        rng = self.rng
        pool = self.pool
        sizes = rng.choices((1, 2, 3, 4), weights=(45, 33, 15, 7), k=count)
        for size in sizes:
            parts = rng.choices(pool, k=size)
            if size >= 3 and rng.random() < 0.5:
                yield " ".join(parts[:-1]) + "\\n\\n" + parts[-1]
            else:
                yield " ".join(parts)


def about_writer(rng: random.Random):
    """about(member, title, company, city) for common.member_chunks."""

    def about(member: int, title: str, company: str, city: str) -> str:
        text = _fill(rng.choice(ABOUT_TEMPLATES), rng)
        return f"{title} at {company}, {city}. {text}"

    return about
