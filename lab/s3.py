"""The lab's S3: moto's threaded server on loopback, with one bucket, as a daemon.

Run as ``python -m lab.s3 --port P --bucket B``; it prints ``READY <url>`` once the bucket exists
and serves until SIGTERM. Moto keeps objects in memory, so a restart of this daemon empties it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

ACCESS_KEY = "standby-lab"
SECRET_KEY = "standby-lab-secret"
REGION = "us-east-1"


def credentials_file_text(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> str:
    """An AWS-style shared credentials file for the lab's S3."""
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def start_moto(
    bucket: str = "standby", *, port: int = 0, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> tuple[Any, str]:
    """Moto's threaded S3 server on loopback (``port`` 0: a free one) with ``bucket`` created.

    Returns the server (``stop()`` it) and its URL. Tests and benches use it in-process.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    url = f"http://{host}:{bound}"
    boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id=access_key,
                 aws_secret_access_key=secret_key).create_bucket(Bucket=bucket)  # fmt: skip
    return server, url


def main(argv: list[str] | None = None) -> int:
    """Serve moto on the given port with the bucket created."""
    parser = argparse.ArgumentParser(prog="python -m lab.s3")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", default="standby")
    args = parser.parse_args(argv)

    server, url = start_moto(args.bucket, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"READY {url}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
