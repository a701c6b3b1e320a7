"""A moto S3 server on a free loopback port, reached the way a user reaches a local S3 endpoint.

The endpoint reaches s3fs through fsspec's configuration variable ``FSSPEC_S3_ENDPOINT_URL``
(``FSSPEC_<PROTOCOL>_<ARGUMENT>``, read when fsspec is imported; it is also put into
``fsspec.config.conf`` in case fsspec was imported first), with the credentials in
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.  Child processes (zoo workers, the CLI) inherit the
variables.  Nothing reaches the internet.
"""
from __future__ import annotations

import contextlib
import urllib.request

import pytest

BUCKET = "ckpt"


@contextlib.contextmanager
def moto_s3(uploads: dict):
    """Serve ``s3://ckpt/<key>/`` with each local directory of ``uploads`` (key -> folder); yields the
    environment a client needs."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets in this process, shared by every server it starts: begin empty
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")).close()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}", "NO_PROXY": "127.0.0.1,localhost"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        import fsspec.config
        import s3fs

        endpoint = {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]}
        mp.setitem(fsspec.config.conf, "s3", {**fsspec.config.conf.get("s3", {}), **endpoint})
        s3fs.S3FileSystem.clear_instance_cache()  # no file system left over with another endpoint
        fs = fsspec.filesystem("s3")
        fs.mkdir(BUCKET)
        for key, folder in uploads.items():
            fs.put(str(folder), f"{BUCKET}/{key}", recursive=True)
        try:
            yield env
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


def upload(local_dir, key: str) -> str:
    """Put the files of ``local_dir`` under ``s3://ckpt/<key>/``, replacing objects of the same names; its URL."""
    import fsspec

    fsspec.filesystem("s3").put(f"{local_dir}/", f"{BUCKET}/{key}/", recursive=True)  # the files, not the folder
    return f"s3://{BUCKET}/{key}"
