"""Run by ``test_automation_server.py``: what ``make up`` does for breaches, and nothing else.

Installs the breach automation with no notification block configured (so its action runs the
``rpo-breach-notice/log`` deployment) and serves that one deployment until killed.
"""

from __future__ import annotations

import os

from prefect import serve

from deployments.serve import deployments, install_breach_automation

if __name__ == "__main__":
    os.environ.pop("STANDBY_NOTIFICATION_BLOCK", None)
    notice = next(d for d in deployments() if d.name == "log")
    automation = install_breach_automation(notice)
    print(f"automation {automation.name}: {type(automation.actions[0]).__name__}", flush=True)
    serve(notice)
