"""HTTP(S) transport for the TUF client, with bounded time per download.

ngclient's own fetcher bounds the gap between bytes but not a download's
total time, so a server that sends one byte every few seconds could hold the
sync job forever. :class:`HttpFetcher` bounds both, verifies TLS against the
configured CA file (or the system store), follows no redirects and ignores
proxy variables: the sync unit may reach only the template server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024


class HttpFetcher(FetcherInterface):
    """Fetch TUF metadata and targets over HTTP or HTTPS.

    Args:
        timeout_s: the maximum wait for a connection or for the next bytes,
            in seconds.
        download_timeout_s: the maximum time one file's download may take,
            in seconds.
        ca_file: PEM file of the CA certificates to trust for HTTPS; empty
            for the system's store.
    """

    def __init__(
        self, timeout_s: float, download_timeout_s: float, ca_file: str = ""
    ) -> None:
        self._timeout_s = timeout_s
        self._download_timeout_s = download_timeout_s
        self._pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file or None,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            headers={"User-Agent": "edge-gate-sync"},
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start a GET and return an iterator over the body.

        Raises:
            tuf.api.exceptions.DownloadHTTPError: the server returned a status of
                300 or above.
            tuf.api.exceptions.SlowRetrievalError: the connection timed out.
        """
        try:
            response = self._pool.request(
                "GET", url, preload_content=False, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as err:
            # urllib3 2.x derives this from its TimeoutError, but a refused
            # connection is no timeout.
            raise exceptions.DownloadError(f"{url}: cannot connect: {err}") from err
        except urllib3.exceptions.TimeoutError as err:
            raise exceptions.SlowRetrievalError(f"{url}: timed out") from err
        if response.status >= 300:
            response.release_conn()
            raise exceptions.DownloadHTTPError(
                f"{url}: HTTP status {response.status}", response.status
            )
        return self._body(url, response)

    def _body(
        self, url: str, response: urllib3.response.BaseHTTPResponse
    ) -> Iterator[bytes]:
        deadline = time.monotonic() + self._download_timeout_s
        try:
            while True:
                # read1 returns what has arrived instead of waiting for a
                # full chunk, so the deadline is checked while bytes trickle.
                chunk = response.read1(_CHUNK_BYTES)
                if time.monotonic() > deadline:
                    raise exceptions.SlowRetrievalError(
                        f"{url}: download took longer than {self._download_timeout_s} s"
                    )
                if not chunk:
                    break
                yield chunk
        except urllib3.exceptions.TimeoutError as err:
            raise exceptions.SlowRetrievalError(f"{url}: read timed out") from err
        except urllib3.exceptions.HTTPError as err:
            # For example the server closed the connection inside the body.
            raise exceptions.DownloadError(f"{url}: transfer failed: {err}") from err
        finally:
            response.release_conn()
