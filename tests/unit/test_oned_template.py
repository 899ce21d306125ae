"""OpenNebula's template language: the lab's strict parser (lab.opennebula.template) and the in-memory
fake's (drkit.testing.opennebula) read the same texts the same way and refuse the same mistakes."""

from __future__ import annotations

import pytest

from drkit.testing.opennebula import TemplateSyntaxError, parse_template
from lab.opennebula.template import (
    TemplateError,
    from_json,
    parse,
    parse_text,
    parse_xml,
    render_text,
    to_json,
)

VALID = [
    ('NAME = "web-0"', [("NAME", "web-0")]),
    ("memory=512", [("MEMORY", "512")]),
    ('NAME = "a b"  # a comment\n\n# another\nCPU = 0.5\n', [("NAME", "a b"), ("CPU", "0.5")]),
    ('DESCRIPTION = "say \\"hi\\" \\\\ bye"', [("DESCRIPTION", 'say "hi" \\ bye')]),
    ('DISK = [ IMAGE_ID = "0", DEV_PREFIX = vd ]', [("DISK", [("IMAGE_ID", "0"), ("DEV_PREFIX", "vd")])]),
    (
        'DISK = [\n  IMAGE_ID = "1",\n  TARGET = "vda"\n]\nDISK = [ IMAGE_ID = "2" ]',
        [("DISK", [("IMAGE_ID", "1"), ("TARGET", "vda")]), ("DISK", [("IMAGE_ID", "2")])],
    ),
    ('NIC = [ NETWORK = "lan", IP = "10.0.0.1" ]', [("NIC", [("NETWORK", "lan"), ("IP", "10.0.0.1")])]),
    (
        'CONTEXT = [ SSH_PUBLIC_KEY = "ssh-ed25519 AAA= x@y" ]',
        [("CONTEXT", [("SSH_PUBLIC_KEY", "ssh-ed25519 AAA= x@y")])],
    ),
    ('EMPTY = ""', [("EMPTY", "")]),
    ('PATH = "/var/tmp/x.iso"', [("PATH", "/var/tmp/x.iso")]),
]

INVALID = [
    "",
    "   \n# only a comment\n",
    "NAME",
    'NAME "x"',
    'NAME = "x',
    'NAME = "a" "b"',
    'NAME = "a", CPU = 1',
    'DISK = [ IMAGE_ID = "0"',
    'DISK = [ IMAGE_ID = "0" IMAGE = "x" ]',
    "DISK = [ ]",
    'DISK = [ IMAGE = [ ID = "0" ] ]',
    '1NAME = "x"',
    'NAME = "x" ]',
    "= 5",
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_both_parsers_read_valid_templates_alike(text: str, expected: list[object]) -> None:
    assert parse_text(text) == expected
    assert parse_template(text) == expected


@pytest.mark.parametrize("text", INVALID)
def test_both_parsers_refuse_malformed_templates(text: str) -> None:
    with pytest.raises(TemplateError):
        parse_text(text)
    with pytest.raises(TemplateSyntaxError):
        parse_template(text)


def test_an_error_names_the_line() -> None:
    with pytest.raises(TemplateError, match="line 3"):
        parse_text('NAME = "x"\nCPU = 1\nDISK = [ IMAGE_ID = "0" IMAGE = "y" ]\n')


@pytest.mark.parametrize(("text", "_expected"), VALID)
def test_render_then_parse_is_the_identity(text: str, _expected: object) -> None:
    template = parse_text(text)
    assert parse_text(render_text(template)) == template
    assert from_json(to_json(template)) == template


def test_xml_templates_as_pyone_sends_them() -> None:
    xml = (
        "<TEMPLATE><NAME><![CDATA[web]]></NAME><MEMORY><![CDATA[512]]></MEMORY>"
        "<DISK><IMAGE_ID><![CDATA[0]]></IMAGE_ID></DISK><DISK><IMAGE_ID><![CDATA[1]]></IMAGE_ID></DISK></TEMPLATE>"
    )
    expected = [
        ("NAME", "web"),
        ("MEMORY", "512"),
        ("DISK", [("IMAGE_ID", "0")]),
        ("DISK", [("IMAGE_ID", "1")]),
    ]
    assert parse_xml(xml) == expected
    assert parse("  " + xml) == expected


@pytest.mark.parametrize(
    "xml",
    [
        "<TEMPLATE><NAME>x</TEMPLATE>",
        "<TEMPLATE/>",
        "<TEMPLATE><DISK><IMAGE><ID>0</ID></IMAGE></DISK></TEMPLATE>",
        "<TEMPLATE><a-b:c>1</a-b:c></TEMPLATE>",
    ],
)
def test_malformed_xml_templates_are_refused(xml: str) -> None:
    with pytest.raises(TemplateError):
        parse(xml)
