"""The accounts service: registration, handles, passwords, the full-profile rule."""

import pytest

from linkmsg.extensions import db
from linkmsg.models import Member
from linkmsg.services import accounts
from linkmsg.services.errors import EmailTaken, InvalidCredentials, ValidationFailed


def count_members() -> int:
    return db.session.scalar(db.select(db.func.count(Member.id)))


def test_register_stores_a_strong_hash_and_normalized_email(ctx):
    member = accounts.register("  Dana@Example.TEST ", "a long secret", "Dana Whitfield")
    assert member.email == "dana@example.test"
    assert "a long secret" not in member.password_hash
    assert member.password_hash.startswith(ctx.config["PASSWORD_HASH_METHOD"].split(":")[0] + ":")
    assert member.handle == "dana-whitfield"


def test_production_hashing_is_scrypt():
    from linkmsg.config import Config

    assert Config.PASSWORD_HASH_METHOD == "scrypt"


def test_register_errors_for_an_email_already_in_use_whatever_its_case(ctx):
    accounts.register("dana@example.test", "a long secret", "Dana")
    with pytest.raises(EmailTaken):
        accounts.register("DANA@example.test", "another secret", "Dana Two")
    assert count_members() == 1


def test_same_names_get_distinct_url_safe_handles(ctx):
    handles = {
        accounts.register(f"p{i}@example.test", "a long secret", "Zoë O'Brien").handle
        for i in range(5)
    }
    assert len(handles) == 5
    for handle in handles:
        assert handle.startswith("zoe-o-brien")
        assert all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in handle)


def test_handle_of_a_name_without_latin_letters_is_still_url_safe(ctx):
    member = accounts.register("wei@example.test", "a long secret", "张伟")
    assert member.handle == "member"


@pytest.mark.parametrize(
    ("email", "password", "name", "field"),
    [
        ("not-an-email", "a long secret", "Dana", "email"),
        ("", "a long secret", "Dana", "email"),
        ("dana@example.test", "short", "Dana", "password"),
        ("dana@example.test", "a long secret", "   ", "name"),
        ("dana@example.test", "a long secret", "x" * 101, "name"),
    ],
)
def test_register_errors_for_bad_input_and_saves_nothing(ctx, email, password, name, field):
    with pytest.raises(ValidationFailed) as info:
        accounts.register(email, password, name)
    assert info.value.field == field
    assert count_members() == 0


def test_authenticate_accepts_the_right_password_only(ctx):
    accounts.register("dana@example.test", "a long secret", "Dana")
    assert accounts.authenticate("DANA@example.test", "a long secret").name == "Dana"
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("dana@example.test", "wrong secret")
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("nobody@example.test", "a long secret")


def test_full_profile_needs_name_headline_and_location(ctx):
    member = accounts.register("dana@example.test", "a long secret", "Dana")
    assert accounts.missing_profile_fields(member) == ["headline", "location"]
    assert not accounts.has_full_profile(member)
    assert "Add your headline and location" in accounts.describe_missing(member)

    accounts.update_profile(member.id, accounts.ProfileInput("Dana", "Recruiter", "", ""))
    assert accounts.missing_profile_fields(member) == ["location"]

    accounts.update_profile(member.id, accounts.ProfileInput("Dana", "Recruiter", "London", ""))
    assert accounts.has_full_profile(member)
    assert accounts.describe_missing(member) is None


def test_whitespace_only_fields_do_not_count_as_filled(ctx):
    member = accounts.register("dana@example.test", "a long secret", "Dana")
    accounts.update_profile(member.id, accounts.ProfileInput("Dana", "   ", "\t", ""))
    assert accounts.missing_profile_fields(member) == ["headline", "location"]


def test_update_profile_saves_nothing_when_one_field_is_too_long(ctx):
    member = accounts.register("dana@example.test", "a long secret", "Dana")
    with pytest.raises(ValidationFailed) as info:
        accounts.update_profile(
            member.id, accounts.ProfileInput("Dana Renamed", "x" * 221, "London", "")
        )
    assert info.value.field == "headline"
    db.session.expire_all()
    assert db.session.get(Member, member.id).name == "Dana"


def test_about_keeps_newlines_and_drops_control_characters(ctx):
    member = accounts.register("dana@example.test", "a long secret", "Dana")
    accounts.update_profile(
        member.id,
        accounts.ProfileInput("Dana", "Recruiter", "London", "Line one\r\nLine\x00 two\n"),
    )
    assert member.about == "Line one\nLine two"
