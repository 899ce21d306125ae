"""The lab's S3: moto's threaded server on loopback, with one bucket, as a daemon.

Run as ``python -m lab.s3 --port P --bucket B [--state-dir DIR] [--ready-file F]``; it prints
``READY <url>`` (and writes its PID to ``F``) once the bucket exists and holds what ``DIR`` saved,
and serves until SIGTERM. Moto keeps objects in memory; with ``--state-dir``
the daemon saves every object of its bucket there when it is stopped (SIGTERM) and puts them back
when it starts, so a lab brought down and up again keeps what its store held (placement records,
journals, backups). A SIGKILLed daemon saves nothing; an emptied ``DIR`` starts an empty bucket.

The lab runs one daemon (``shared``: both sites use the same bucket) or one per site
(``per-site``: each site its own endpoint, bucket and keys); see :mod:`lab.lab`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ACCESS_KEY = "standby-lab"
SECRET_KEY = "standby-lab-secret"
REGION = "us-east-1"
STATE_INDEX = "objects.json"


def credentials_file_text(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> str:
    """An AWS-style shared credentials file for the lab's S3."""
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def _client(url: str, access_key: str, secret_key: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def start_moto(
    bucket: str = "standby", *, port: int = 0, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> tuple[Any, str]:
    """Moto's threaded S3 server on loopback (``port`` 0: a free one) with ``bucket`` created.

    Returns the server (``stop()`` it) and its URL. Tests and benches use it in-process.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _route_straight_to_s3(server)
    host, bound = server.get_host_and_port()
    url = f"http://{host}:{bound}"
    _client(url, access_key, secret_key).create_bucket(Bucket=bucket)
    return server, url


def _route_straight_to_s3(server: Any) -> None:
    """Give ``server`` a dispatcher that knows every request is for S3 (nothing else is asked of it).

    Moto's own dispatcher finds each request's service by matching its host against the URL
    patterns of every AWS service, under one lock: measured with py-spy, 16 % of the CPU of a
    10,000-object backup went there. The S3 backend and its responses are moto's, unchanged.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class S3Dispatcher(DomainDispatcherApplication):
        def get_backend_for_host(self, host: str | None) -> Any:
            if host is not None and (host == "s3" or host.startswith("s3.")):
                return "s3"
            return super().get_backend_for_host(host)

    wsgi = getattr(server, "_server", None)  # werkzeug's server, which calls ``.app`` per request
    if wsgi is not None and isinstance(getattr(wsgi, "app", None), DomainDispatcherApplication):
        wsgi.app = S3Dispatcher(create_backend_app)


def save_bucket(client: Any, bucket: str, state_dir: Path) -> int:
    """Write every object of ``bucket`` (body, content type, user metadata) to ``state_dir``.

    The new state is written next to the old one and swapped in whole, so a stop interrupted
    halfway leaves the previous state. Returns the number of objects saved.
    """
    tmp = state_dir.with_name(state_dir.name + ".saving")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "blobs").mkdir(parents=True)
    index: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = client.get_object(Bucket=bucket, Key=item["Key"])
            blob = f"{len(index):08d}"
            (tmp / "blobs" / blob).write_bytes(got["Body"].read())
            index.append(
                {
                    "key": item["Key"],
                    "blob": blob,
                    "content_type": got.get("ContentType"),
                    "metadata": got.get("Metadata") or {},
                }
            )
    (tmp / STATE_INDEX).write_text(json.dumps({"bucket": bucket, "objects": index}, indent=1) + "\n")
    old = state_dir.with_name(state_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if state_dir.exists():
        os.replace(state_dir, old)
    os.replace(tmp, state_dir)
    shutil.rmtree(old, ignore_errors=True)
    return len(index)


def load_bucket(client: Any, bucket: str, state_dir: Path) -> int:
    """Put back what :func:`save_bucket` wrote (nothing when ``state_dir`` holds no state)."""
    try:
        index = json.loads((state_dir / STATE_INDEX).read_text())["objects"]
    except (OSError, ValueError, KeyError):
        return 0
    for obj in index:
        extra: dict[str, Any] = {"Metadata": obj.get("metadata") or {}}
        if obj.get("content_type"):
            extra["ContentType"] = obj["content_type"]
        body = (state_dir / "blobs" / obj["blob"]).read_bytes()
        client.put_object(Bucket=bucket, Key=obj["key"], Body=body, **extra)
    return len(index)


def main(argv: list[str] | None = None) -> int:
    """Serve moto on the given port with the bucket created (and its saved objects put back)."""
    parser = argparse.ArgumentParser(prog="python -m lab.s3")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", default="standby")
    parser.add_argument("--access-key", default=ACCESS_KEY)
    parser.add_argument("--secret-key", default=SECRET_KEY)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="save the bucket here on SIGTERM, load it from here at start",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="written (with this PID) once the saved objects are back",
    )
    args = parser.parse_args(argv)

    server, url = start_moto(
        args.bucket, port=args.port, access_key=args.access_key, secret_key=args.secret_key
    )
    client = _client(url, args.access_key, args.secret_key)
    if args.state_dir is not None:
        loaded = load_bucket(client, args.bucket, args.state_dir)
        print(f"loaded {loaded} objects into {args.bucket} from {args.state_dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.ready_file is not None:
        args.ready_file.write_text(f"{os.getpid()}\n")
    print(f"READY {url}", flush=True)
    stop.wait()
    if args.state_dir is not None:
        saved = save_bucket(client, args.bucket, args.state_dir)
        print(f"saved {saved} objects of {args.bucket} to {args.state_dir}", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
