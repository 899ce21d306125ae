"""The backup key ring as text, and the rule that refuses weak key text. Pure.

One format, the same on every route (the CLI's environment variable, the flows' Prefect Secret
block, the Kubernetes job's Secret): the base64 text of each 32-byte key, **the current key first**,
then the older keys still needed to open runs sealed before a rotation, separated by commas
(whitespace and newlines are accepted too)::

    <current key>,<older key>,<oldest key>

A single key is a ring of one, so a value written before key rotation existed is still valid. New
runs are sealed with the current key; a blob names the key id that sealed it and the ring opens it
with that key (:meth:`~drkit.domain.crypto.MasterKey.for_id`). :func:`parse_ring` is the only
parser of this text; :func:`rotated` writes the ring a rotation leaves.

**Weak key text is refused** (:func:`weakness`): a key is 32 bytes from a random generator, written
in base64, never a password. Text is refused when it

* has fewer than 20 distinct characters (43 random base64 characters have about 31),
* repeats a run of 6 or more characters (``NexusPassword2024NexusPassword2024...``),
* has no upper-case or no lower-case letter (all-lower-case words, digits only),
* decodes to bytes of which 28 or more of 32 are printable ASCII (the base64 of a typed
  password, passphrase or hex string), or to fewer than 16 distinct byte values (a repeat).

A key from a random generator is refused by these rules with a probability below one in 10^7
(``standby key generate`` draws again when it happens). The way out is always
``standby key generate``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Sequence

from drkit.domain.crypto import MasterKey
from drkit.domain.errors import ConfigError

KEY_BLOCK = "standby-backup-key"
"""The shipped name of the Prefect Secret block (flows) and of the Kubernetes Secret (job) holding the ring."""

SEPARATORS = re.compile(r"[\s,]+")
MIN_DISTINCT_CHARACTERS = 20
MIN_REPEAT = 6
MAX_PRINTABLE_BYTES = 27
MIN_DISTINCT_BYTES = 16

GENERATE_HINT = (
    "generate a key with `standby key generate` (32 random bytes in base64) and store it as a secret"
)


def split_ring(text: str) -> list[str]:
    """The key texts of a ring, the current one first (empty: no key)."""
    return [part for part in SEPARATORS.split(text.strip()) if part]


def _decoded(text: str) -> bytes:
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return b""


def weakness(text: str) -> str | None:
    """Why the key ``text`` (one key, base64) is weak, or ``None`` (see the module docstring)."""
    body = text.strip().rstrip("=")
    if len(set(body)) < MIN_DISTINCT_CHARACTERS:
        return f"it uses only {len(set(body))} distinct characters"
    if re.search(rf"(.{{{MIN_REPEAT},}}).*\1", body):
        return "it repeats a run of characters"
    if not re.search("[A-Z]", body) or not re.search("[a-z]", body):
        return "it lacks upper-case or lower-case letters"
    raw = _decoded(body)
    if len(raw) == 32:
        printable = sum(0x20 <= b < 0x7F for b in raw)
        if printable > MAX_PRINTABLE_BYTES:
            return f"it decodes to {printable} printable characters of 32 (a password, not random bytes)"
        if len(set(raw)) < MIN_DISTINCT_BYTES:
            return f"it decodes to only {len(set(raw))} distinct byte values"
    return None


def parse_key(text: str, *, position: int = 0) -> MasterKey:
    """One key of a ring from its base64 text: :class:`ConfigError` when it is not 32 bytes or weak.

    ``position`` (0: the current key) names the key in the error; its text never appears.
    """
    which = "the current key" if position == 0 else f"older key #{position} of the ring"
    try:
        key = MasterKey.parse(text)
    except ConfigError as error:
        raise ConfigError(f"{which}: {error.message}", hint=GENERATE_HINT) from None
    why = weakness(text)
    if why is not None:
        raise ConfigError(
            f"{which} (key id {key.key_id}) is weak key text: {why}; a backup key must be 32 random bytes",
            hint=GENERATE_HINT + ", then rotate to it (`standby key rotate`)",
            context={"key_id": key.key_id},
        )
    return key


def parse_ring(text: str) -> MasterKey | None:
    """The ring in ``text`` (see the module docstring): its current key, able to open what the older
    keys sealed; ``None`` when ``text`` holds no key. Every key is checked (:func:`parse_key`)."""
    keys = [parse_key(part, position=i) for i, part in enumerate(split_ring(text))]
    if not keys:
        return None
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(
            f"the key ring names key id {twice} twice",
            hint="write each key once: the current key first, then the older ones, separated by commas",
        )
    return keys[0].with_older(tuple(keys[1:])) if len(keys) > 1 else keys[0]


def join_ring(texts: Sequence[str]) -> str:
    """The ring text of key texts (the current first), in the canonical form: comma-separated."""
    return ",".join(t.strip() for t in texts)


def new_key_text(random: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """Base64 text of 32 new random bytes that :func:`weakness` accepts (drawn again otherwise)."""
    while True:
        text = base64.b64encode(random(32)).decode()
        if weakness(text) is None:
            return text


def rotated(ring_text: str, new_text: str, *, drop: Sequence[str] = ()) -> str:
    """The ring after a rotation to ``new_text``: the new key first, then every key of ``ring_text``
    (the old current one included) except those whose id is in ``drop``.

    Raises :class:`ConfigError` when a key is weak, when ``new_text`` is already in the ring, or
    when a key id in ``drop`` is not in the ring or is the new key's.
    """
    old = split_ring(ring_text)
    old_ids = [parse_key(t, position=i + 1).key_id for i, t in enumerate(old)]
    new_id = parse_key(new_text).key_id
    if new_id in old_ids:
        raise ConfigError(
            f"key id {new_id} is already in the ring; a rotation needs a new key",
            hint="run `standby key rotate` without --new-key-env to generate one",
        )
    unknown = [d for d in drop if d not in old_ids]
    if unknown:
        raise ConfigError(
            f"key id {unknown[0]} (--drop) is not in the ring ({', '.join(old_ids) or 'empty'})",
            hint="name the id of an older key, as `standby key id` prints them",
        )
    kept = [t for t, i in zip(old, old_ids, strict=True) if i not in drop]
    return join_ring([new_text, *kept])
