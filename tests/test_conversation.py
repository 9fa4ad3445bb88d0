"""How a thread's messages are laid out: runs from one sender and days (services.conversation)."""

from datetime import date, datetime, timedelta

from linkmsg.models import Message
from linkmsg.services.conversation import day_label, laid_out

START = datetime(2026, 3, 2, 23, 40)


def message(sender_id: int, minutes: float) -> Message:
    return Message(sender_id=sender_id, body="", created_at=START + timedelta(minutes=minutes))


def test_runs_break_on_another_sender_a_five_minute_gap_and_a_new_day():
    messages = [
        message(1, 0),
        message(1, 4.9),  # same sender, under five minutes: continues
        message(2, 5),  # another sender
        message(2, 10),  # exactly five minutes later: a new run
        message(2, 19),  # 23:59
        message(2, 21),  # two minutes later, but 00:01 the next day: a new day, a new run
    ]
    placed = laid_out(messages)
    assert [p.starts_group for p in placed] == [True, False, True, True, True, True]
    days = [p.day for p in placed]
    assert days == [date(2026, 3, 2), None, None, None, None, date(2026, 3, 3)]


def test_day_labels():
    today = date(2026, 3, 3)
    assert day_label(today, today) == "Today"
    assert day_label(date(2026, 3, 2), today) == "Yesterday"
    assert day_label(date(2026, 2, 27), today) == "Friday, February 27"
    assert day_label(date(2025, 12, 31), today) == "December 31, 2025"
