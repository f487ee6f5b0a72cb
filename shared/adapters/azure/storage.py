"""The blob storage adapter: azure-storage-blob, against Azure (managed identity) or Azurite (connection string).

The same SDK serves both backends, so the local run exercises the very code that runs in Azure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from shared.ports import Blob, BlobInfo, PreconditionFailed

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


class AzureBlobStore:
    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzureBlobStore:
        from azure.storage.blob import BlobServiceClient

        return cls(BlobServiceClient.from_connection_string(connection_string))

    @classmethod
    def from_account_url(cls, account_url: str, credential: object) -> AzureBlobStore:
        from azure.storage.blob import BlobServiceClient

        return cls(BlobServiceClient(account_url, credential=credential))

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

    def write(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
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
