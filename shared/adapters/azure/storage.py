"""The blob storage adapter: azure-storage-blob, against Azure (managed identity) or Azurite (connection string).

The same SDK serves both backends, so the local run exercises the very code that runs in Azure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from shared.ports import Blob, BlobInfo, BlobStream, CopyPending, PreconditionFailed

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, StorageStreamDownloader

# A streamed download holds one chunk at a time; the SDK's defaults would fetch the first 32 MiB at once.
CHUNK_BYTES = 4 * 1024 * 1024
_CLIENT_OPTIONS = {"max_single_get_size": CHUNK_BYTES, "max_chunk_get_size": CHUNK_BYTES}


class AzureBlobStore:
    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzureBlobStore:
        from azure.storage.blob import BlobServiceClient

        return cls(BlobServiceClient.from_connection_string(connection_string, **_CLIENT_OPTIONS))

    @classmethod
    def from_account_url(cls, account_url: str, credential: object) -> AzureBlobStore:
        from azure.storage.blob import BlobServiceClient

        return cls(BlobServiceClient(account_url, credential=credential, **_CLIENT_OPTIONS))

    def close(self) -> None:
        """Close pooled connections (a storage emulator waits for open connections before it exits)."""
        self._service.close()

    def ensure_containers(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                self._service.create_container(name)
            except ResourceExistsError:
                continue

    def read(self, container: str, name: str) -> Blob | None:
        client = self._service.get_blob_client(container, name)
        try:
            downloader = client.download_blob()
        except ResourceNotFoundError:
            return None
        props = downloader.properties
        data = downloader.readall()
        return Blob(info=_info(container, name, props.etag, props.size, props.last_modified), data=data)

    def info(self, container: str, name: str) -> BlobInfo | None:
        try:
            props = self._service.get_blob_client(container, name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return _info(container, name, props.etag, props.size, props.last_modified)

    def open(self, container: str, name: str) -> BlobStream | None:
        client = self._service.get_blob_client(container, name)
        try:
            # max_concurrency=1: chunks arrive in order, one in memory at a time; every request after the first
            # is conditional on the first one's ETag, so the chunks are all of one version.
            downloader = client.download_blob(max_concurrency=1)
        except ResourceNotFoundError:
            return None
        props = downloader.properties
        info = _info(container, name, props.etag, props.size, props.last_modified)
        return BlobStream(info=info, chunks=_chunks(downloader, f"{container}/{name}"))

    def copy(
        self,
        source_container: str,
        source_name: str,
        container: str,
        name: str,
        *,
        source_etag: str | None = None,
        if_none_match: bool = False,
    ) -> None:
        source = self._service.get_blob_client(source_container, source_name)
        kwargs: dict[str, object] = {}
        if source_etag:
            kwargs["source_etag"] = source_etag
            kwargs["source_match_condition"] = MatchConditions.IfNotModified
        if if_none_match:
            kwargs["match_condition"] = MatchConditions.IfMissing  # If-None-Match: *
        label = f"{source_container}/{source_name} -> {container}/{name}"
        try:
            result = self._service.get_blob_client(container, name).start_copy_from_url(source.url, **kwargs)
        except ResourceNotFoundError as error:
            raise PreconditionFailed(f"{label}: the source is gone") from error
        except (ResourceExistsError, ResourceModifiedError) as error:
            raise PreconditionFailed(f"{label}: {error.reason or 'condition not met'}") from error
        except HttpResponseError as error:
            if error.error_code == "PendingCopyOperation":
                raise CopyPending(f"{label}: a copy is still under way") from error
            if error.status_code in (409, 412):
                raise PreconditionFailed(f"{label}: {error.reason}") from error
            raise
        if str(result.get("copy_status") or "success").lower() == "pending":
            raise CopyPending(f"{label}: the copy is under way")

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        from azure.storage.blob import ContentSettings

        kwargs: dict[str, object] = {}
        if if_none_match:
            kwargs["overwrite"] = False
        else:
            kwargs["overwrite"] = True
        if if_match:
            kwargs["etag"] = if_match
            kwargs["match_condition"] = MatchConditions.IfNotModified
        if content_type:
            kwargs["content_settings"] = ContentSettings(content_type=content_type)
        if tags:
            kwargs["tags"] = dict(tags)
        try:
            result = self._service.get_blob_client(container, name).upload_blob(data, **kwargs)
        except (ResourceExistsError, ResourceModifiedError) as error:
            raise PreconditionFailed(f"{container}/{name}: {error.reason or 'condition not met'}") from error
        except HttpResponseError as error:
            if error.status_code in (409, 412):
                raise PreconditionFailed(f"{container}/{name}: {error.reason}") from error
            raise
        return str(result["etag"])

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        blobs = self._service.get_container_client(container).list_blobs(name_starts_with=prefix or None)
        for props in blobs:
            yield _info(container, props.name, props.etag, props.size, props.last_modified)

    def list_page(
        self, container: str, prefix: str = "", *, marker: str | None = None, limit: int = 5000
    ) -> tuple[list[BlobInfo], str | None]:
        client = self._service.get_container_client(container)
        pages = client.list_blobs(name_starts_with=prefix or None, results_per_page=limit)
        pager = pages.by_page(continuation_token=marker)
        page = next(pager, None)
        items = (
            [] if page is None else [_info(container, p.name, p.etag, p.size, p.last_modified) for p in page]
        )
        return items, pager.continuation_token or None

    def find(self, container: str, tag: str, value: str) -> Iterator[str]:
        client = self._service.get_container_client(container)
        for found in client.find_blobs_by_tags(f"\"{tag}\" = '{value}'"):
            yield found.name

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> None:
        kwargs: dict[str, object] = {}
        if if_match:
            kwargs = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        try:
            self._service.get_blob_client(container, name).delete_blob(**kwargs)
        except ResourceNotFoundError:
            if if_match:
                raise PreconditionFailed(f"{container}/{name} no longer exists") from None
        except ResourceModifiedError as error:
            raise PreconditionFailed(f"{container}/{name}: {error.reason}") from error
        except HttpResponseError as error:
            if error.status_code == 412:
                raise PreconditionFailed(f"{container}/{name}: {error.reason}") from error
            raise

    def url(self, container: str, name: str) -> str:
        return self._service.get_blob_client(container, name).url


def _chunks(downloader: StorageStreamDownloader, label: str) -> Iterator[bytes]:
    try:
        yield from downloader.chunks()
    except (ResourceModifiedError, ResourceNotFoundError) as error:
        raise PreconditionFailed(f"{label} changed while it was read") from error
    except HttpResponseError as error:
        if error.status_code in (404, 412):
            raise PreconditionFailed(f"{label} changed while it was read") from error
        raise


def _info(container: str, name: str, etag: str, size: int | None, modified: datetime | None) -> BlobInfo:
    etag = str(etag)
    if not etag.startswith('"'):  # listings give ETags bare, other calls quoted: keep one form
        etag = f'"{etag}"'
    return BlobInfo(
        container=container,
        name=name,
        etag=etag,
        size=int(size or 0),
        last_modified=modified or datetime.now(UTC),
    )
