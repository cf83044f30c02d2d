"""edge_gate.sync: template updates over The Update Framework.

The gate side (:func:`run_sync`, :func:`sync_once`) fetches signed metadata
with python-tuf's ngclient, downloads the template bundles it lists, decrypts
them with the fleet key and applies them to ``templates.db`` in one
transaction. The server side (:class:`Publisher`) builds and signs that
repository from enrolment records, and creates and rotates its keys.
"""

from edge_gate.sync._bundle import BundleHeader, BundleWriter, read_bundle
from edge_gate.sync._client import SyncResult, run_sync, sync_once
from edge_gate.sync._fetcher import HttpFetcher
from edge_gate.sync._index import INDEX_PATH, BundleIndex, BundleRef, parse_index
from edge_gate.sync._input import ImageTemplateLoader, read_records
from edge_gate.sync._publisher import (
    ROLES,
    Expiries,
    Publisher,
    PublishResult,
    record_hash,
)

__all__ = [
    "INDEX_PATH",
    "ROLES",
    "BundleHeader",
    "BundleIndex",
    "BundleRef",
    "BundleWriter",
    "Expiries",
    "HttpFetcher",
    "ImageTemplateLoader",
    "PublishResult",
    "Publisher",
    "SyncResult",
    "parse_index",
    "read_bundle",
    "read_records",
    "record_hash",
    "run_sync",
    "sync_once",
]
