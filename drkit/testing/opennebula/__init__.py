"""An OpenNebula front-end in memory that speaks :class:`drkit.adapters.opennebula.OneFrontend`.

It behaves as oned does for what Standby uses (the contract suite runs the same tests on it and on
:class:`~drkit.adapters.opennebula.PyoneFrontend` against the lab's fake front-end): a VM is
``PENDING`` (or ``HOLD``) when allocated, ``ACTIVE``/``RUNNING`` once deployed; ``poweroff``,
``terminate``, ``undeploy``, ``resume``... move it as in oned and refuse a state that does not allow
them; a persistent image is ``USED_PERS`` while a VM holds it, a name is unique, an image in use
cannot be deleted. Its errors come from the builders in :mod:`drkit.adapters.opennebula`.

Fault knobs (set them at any time):

* ``running``: False, and every call is :class:`~drkit.adapters.opennebula.OneUnreachable`;
* ``given_session``: a session other than ``session`` is refused (``OneAccessDenied``);
* :meth:`lock` a VM or an image: changing it is ``OneConflict`` with ``locked``;
* ``broken``: names of calls (``"vm"``, ``"image"``, ``"vms_labelled"``...) whose reply "cannot be
  parsed" (``OneParseError``).

:func:`fake_site_a` and :func:`fake_site_b` hold what the lab seeds on each site. Templates are
read in OpenNebula's text syntax only (what the protocol takes); the lab's front-end also reads XML.

The modules: :mod:`.template` (the syntax), :mod:`.state` (records, knobs, plumbing), :mod:`.vms`
(the VM calls), :mod:`.frontend` (:class:`FakeOneFrontend`) and :mod:`.seeds`. Import from this package.
"""

from __future__ import annotations

from drkit.testing.opennebula.frontend import FakeOneFrontend
from drkit.testing.opennebula.seeds import LABEL_KEY, LABEL_VALUE, POOL, fake_site_a, fake_site_b
from drkit.testing.opennebula.template import SYSTEM_ATTRS, Attrs, TemplateSyntaxError, parse_template

__all__ = [
    "LABEL_KEY",
    "LABEL_VALUE",
    "POOL",
    "SYSTEM_ATTRS",
    "Attrs",
    "FakeOneFrontend",
    "TemplateSyntaxError",
    "fake_site_a",
    "fake_site_b",
    "parse_template",
]
