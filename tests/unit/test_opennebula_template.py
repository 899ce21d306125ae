"""OpenNebula's template syntax (quotes and backslashes escaped, exact round trips) and the split of
a template's secret values from the rest."""

from __future__ import annotations

import pytest

from drkit.domain.opennebula_template import (
    TemplateSyntaxError,
    is_secret_key,
    join_secrets,
    parse_template,
    quote,
    render_template,
    split_secrets,
)

AWKWARD = [
    "",
    "plain",
    'say "hi"',
    "C:\\path\\",
    '\\"',
    "ends with a backslash \\",
    "two\nlines, commas, [brackets] = and # hashes",
    "\\\\server\\share",
    "ünïcødé ✓",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_any_value_round_trips_through_the_syntax(value: str) -> None:
    template = {"A": value, "V": {"X": value, "Y": "y"}, "L": [{"Z": value}, {"Z": "2"}]}
    assert parse_template(render_template(template)) == template


def test_quotes_and_backslashes_are_escaped_and_nothing_else() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("line\nbreak") == '"line\nbreak"'
    assert render_template({"CONTEXT": {"START_SCRIPT": 'echo "hi" > /tmp/x'}, "MEMORY": 512}) == (
        'CONTEXT=[\n  START_SCRIPT="echo \\"hi\\" > /tmp/x" ]\nMEMORY="512"\n'
    )


def test_the_guides_template_file_parses() -> None:
    text = """NAME="alpine-0-rep"
CONTEXT=[
  DISK_ID="1",
  ETH0_IP="192.168.150.100",
  NETWORK="YES",
  TARGET="hda" ]
CPU="0.1"
GRAPHICS=[
  LISTEN="0.0.0.0",
  PORT="5900",
  TYPE="vnc" ]
MEMORY=96
# a comment
NIC=[ NETWORK="public-b" ]
NIC=[ NETWORK="private-b", MODEL=virtio ]
"""
    parsed = parse_template(text)
    assert parsed["CONTEXT"]["ETH0_IP"] == "192.168.150.100" and parsed["MEMORY"] == "96"
    assert parsed["NIC"] == [{"NETWORK": "public-b"}, {"NETWORK": "private-b", "MODEL": "virtio"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('A="unterminated', "unexpected '\"' at offset 2"),
        ('A=[ B="x"', "unexpected end of template"),
        ('A "x"', "expected = at offset 2"),
        ("=x", "expected word at offset 0"),
    ],
)
def test_what_is_not_template_syntax_names_the_offset(text: str, expected: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=expected):
        parse_template(text)


@pytest.mark.parametrize("key", ["A-B", "", "X Y", 'Q"'])
def test_keys_are_names(key: str) -> None:
    with pytest.raises(ValueError, match="is not a name"):
        render_template({key: "v"})


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("ROOT_PASSWORD", True),
        ("PASSWORD_BASE64", True),
        ("PASSWD", True),
        ("ONEAPP_DB_PASSWORD", True),
        ("DB_PASS", True),
        ("API_TOKEN", True),
        ("ONEGATE_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("SSH_PRIVATE_KEY", True),
        ("TLS_KEY", True),
        ("CREDENTIALS", True),
        ("START_SCRIPT_BASE64", True),
        ("ssh_public_key", False),
        ("SSH_PUBLIC_KEY", False),
        ("KEYMAP", False),
        ("PASSENGER", False),
        ("NETWORK", False),
        ("USERNAME", False),
        ("ETH0_IP", False),
    ],
)
def test_which_names_may_hold_a_secret(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def template() -> dict[str, object]:
    return {
        "NAME": "web",
        "VROUTER_KEEPALIVED_PASSWORD": "keepalive-pw",
        "CONTEXT": {
            "NETWORK": "YES",
            "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA web",
            "ROOT_PASSWORD": 'r00t"\\pw',
            "START_SCRIPT_BASE64": "ZWNobyBzM2NyM3Q=",
        },
        "GRAPHICS": {"TYPE": "vnc", "PASSWD": "vnc-pw", "KEYMAP": "en-us"},
        "DISK": [{"IMAGE": "a"}, {"IMAGE": "b", "CEPH_SECRET": "uuid-1"}],
        "OS": {"ARCH": "x86_64"},
    }


SECRETS = ("keepalive-pw", 'r00t"\\pw', "ZWNobyBzM2NyM3Q=", "vnc-pw", "uuid-1")


def test_secret_values_are_split_out_by_path_and_joined_back() -> None:
    public, secret = split_secrets(template())
    assert secret == {
        "VROUTER_KEEPALIVED_PASSWORD": "keepalive-pw",
        "CONTEXT/ROOT_PASSWORD": 'r00t"\\pw',
        "CONTEXT/START_SCRIPT_BASE64": "ZWNobyBzM2NyM3Q=",
        "GRAPHICS/PASSWD": "vnc-pw",
        "DISK[1]/CEPH_SECRET": "uuid-1",
    }
    rendered = render_template(public)
    assert not [s for s in SECRETS if s in rendered or s in repr(public)]
    assert public["CONTEXT"] == {"NETWORK": "YES", "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA web"}
    assert join_secrets(public, secret) == template()
    assert template() == template() and split_secrets(template())[0] is not template()  # input untouched


def test_a_template_without_secrets_splits_into_itself_and_nothing() -> None:
    plain = {"NAME": "x", "CONTEXT": {"NETWORK": "YES"}}
    assert split_secrets(plain) == (plain, {})


def test_a_vector_of_secrets_only_keeps_its_place() -> None:
    public, secret = split_secrets({"CONTEXT": {"PASSWORD": "p"}})
    assert public == {"CONTEXT": {}} and join_secrets(public, secret) == {"CONTEXT": {"PASSWORD": "p"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("DISK[5]/CEPH_SECRET", "no DISK\\[5\\] in the public part"),
        ("CONTEXT", "CONTEXT is a vector in the public part"),
        ("DISK/KEY", "DISK is not a single vector"),
        ("a b", "is not KEY, VEC/KEY or VEC\\[i\\]/KEY"),
    ],
)
def test_a_secret_path_that_does_not_fit_is_refused_without_its_value(path: str, expected: str) -> None:
    public, _ = split_secrets(template())
    with pytest.raises(ValueError, match=expected) as info:
        join_secrets(public, {path: "the-value"})
    assert "the-value" not in str(info.value)
