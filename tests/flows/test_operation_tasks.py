"""The Prefect side of operations: the routing webhook block and the approval form's schema."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prefect.blocks.webhook import Webhook

from drkit.domain.errors import ConfigError, TransientError
from drkit.domain.operations import Check, Plan, StepSpec
from drkit.testing.dr import fake_config
from tasks.operations import approval_model, webhook_routing


@pytest.fixture
def listener() -> Iterator[tuple[str, list[dict[str, object]], list[int]]]:
    got: list[dict[str, object]] = []
    status = [204]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/switch", got, status
    server.shutdown()


def test_routing_webhook_posts_the_app_and_its_new_site(
    listener: tuple[str, list[dict[str, object]], list[int]],
) -> None:
    url, got, status = listener
    Webhook(url=url, method="POST", allow_private_urls=True).save("route-nexus", overwrite=True)
    app = fake_config().app("nexus")
    webhook_routing("route-nexus")(app, "site-b")
    assert got == [
        {"app": "nexus", "namespace": "nexus-dr", "site": "site-b", "event": "standby.routing.switch"}
    ]
    status[0] = 500
    with pytest.raises(TransientError, match="answered 500 for app nexus"):
        webhook_routing("route-nexus")(app, "site-b")
    with pytest.raises(ConfigError, match="Webhook block 'no-such-hook'"):
        webhook_routing("no-such-hook")(app, "site-b")


def test_the_approval_form_asks_only_the_acknowledgements_the_plan_needs() -> None:
    base = Plan(
        kind="failover",
        app="nexus",
        source="site-a",
        target="site-b",
        checks=(Check(name="x", ok=True),),
        steps=(StepSpec(name="placement", title="t", site="site-b"),),
    )
    plain = approval_model(base).model_json_schema()
    assert set(plain["required"]) == {"confirm_app", "approver", "reason"}
    assert "acknowledge_data_loss" not in plain["properties"]
    assert plain["properties"]["confirm_app"]["description"] == "type the app's name (nexus) to confirm"
    risky = approval_model(base.model_copy(update={"needs_data_loss_ack": True, "needs_unfenced_ack": True}))
    props = risky.model_json_schema()["properties"]
    assert {"acknowledge_data_loss", "acknowledge_unfenced"} <= set(props)
