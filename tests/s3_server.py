"""moto's stand-alone S3 server as the tests' S3 peer: a real HTTP server in its own
process on a free loopback port, with credentials checked (IAM-style access control:
only the key made at start opens the bucket)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from grading.management.commands._processes import free_port, wait_for_port

# moto answers this many requests without credentials (making the user and its key),
# then checks every request's signature against the keys it has issued.
_SETUP_REQUESTS = 3


class MotoS3(NamedTuple):
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    process: subprocess.Popen[bytes]

    def client(self, *, access_key: str | None = None, secret_key: str | None = None):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def storage_options(self, bucket: str | None = None) -> dict[str, object]:
        return {
            "bucket_name": bucket or self.bucket,
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "location": "",
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        }

    def environment(self, **overrides: str) -> dict[str, str]:
        """The variables that put a portal process on this server (settings.py reads them)."""
        return {
            "ONFH_STORAGE": "s3",
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            **overrides,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto_s3(log: Path, bucket: str = "onfh-test") -> MotoS3:
    """Start the server (fails, never skips, when moto is not installed)."""
    import boto3

    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process, 60, "moto_server (pip install 'moto[server]')")
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="onfh")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="onfh", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="onfh")["AccessKey"]
        server = MotoS3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket, process)
        server.client().create_bucket(Bucket=bucket)
        return server
    except BaseException:
        process.kill()
        process.wait()
        raise
