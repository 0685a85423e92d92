"""The `$batch` body devhost writes itself (`devhost.store.azure.batch`) is byte for byte the one
azure-data-tables writes for the same operations (its `_table_batch.py` / `_base_client_async.py`
`_batch_send`), boundaries and dates aside: the format Azure Table storage accepts, not merely one
Azurite tolerates. Azurite's answers (commit, refusal) are covered by test_store_contract.py. The same holds for the
other requests devhost builds itself (single entity writes, queue sends and deletes).

Tests internals: imports `devhost.store.azure.batch`, `devhost.store.azure.queues`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from devhost.store.azure import batch, queues

_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_CONN = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={_KEY};"
    "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)
_ETAG = "W/\"datetime'2026-01-01T00%3A00%3A00.1234567Z'\""


class _Captured(BaseException):
    def __init__(self, request: Any) -> None:
        self.request = request


class _Recorder(AsyncHttpTransport):
    """A transport that keeps the request instead of sending it."""

    async def __aenter__(self) -> _Recorder:
        return self

    async def __aexit__(self, *args: Any) -> None:
        return None

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, request: Any, **kwargs: Any) -> Any:
        raise _Captured(request)


def _body(request: Any) -> str:
    if request.content is None and getattr(request, "data", None) is None:
        request.prepare_multipart_body()
    data = request.content if request.content is not None else request.data
    return data.decode() if isinstance(data, bytes) else str(data)


def _normalised(text: str) -> str:
    text = re.sub(r"(batch|changeset)_[0-9a-f-]{36}", r"\1_B", text)
    return re.sub(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", "DATE", text)


OPERATIONS: list[tuple[Any, ...]] = [
    (
        "update",
        {
            "PartitionKey": "p^0'1 é",
            "RowKey": "sentinel",
            "HistoryLength": 7,
            "IsCheckpointComplete": True,
            "CreatedTime": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            "Ratio": 1.5,
            "Name": 'fl"ow\n',
            "Skipped": None,
        },
        {"mode": UpdateMode.REPLACE, "etag": _ETAG, "match_condition": MatchConditions.IfNotModified},
    ),
    (
        "update",
        {"PartitionKey": "p^0'1 é", "RowKey": "sentinel", "IsCheckpointComplete": False},
        {"mode": UpdateMode.MERGE, "etag": _ETAG, "match_condition": MatchConditions.IfNotModified},
    ),
    (
        "upsert",
        {"PartitionKey": "p^0'1 é", "RowKey": "0000000000000001", "Input": "[1, 2]", "Nan": float("nan")},
        {"mode": UpdateMode.REPLACE},
    ),
    ("upsert", {"PartitionKey": "p^0'1 é", "RowKey": "0000000000000002", "N": -3}, {"mode": UpdateMode.MERGE}),
    ("create", {"PartitionKey": "p^0'1 é", "RowKey": "sentinel", "Neg": float("-inf")}),
    ("delete", {"PartitionKey": "p^0'1 é", "RowKey": "0000000000000003"}),
]


async def test_the_batch_body_is_what_azure_data_tables_writes() -> None:
    table = TableClient.from_connection_string(_CONN, "hubHistory", transport=_Recorder())
    with pytest.raises(_Captured) as theirs:
        await table.submit_transaction(OPERATIONS)
    their_request = theirs.value.request
    boundary = re.search(r"boundary=(batch_[0-9a-f-]{36})", their_request.headers["Content-Type"])
    assert boundary is not None
    mine = batch.changeset(
        "http://127.0.0.1:1/devstoreaccount1",
        "hubHistory",
        OPERATIONS,
        table.api_version,
        "Thu, 01 Jan 2026 00:00:00 GMT",
        "batch_" + "0" * 36,
        "changeset_" + "1" * 36,
    )
    assert _normalised(mine) == _normalised(_body(their_request))


def test_an_answer_is_read_per_operation_and_a_refusal_names_its_code() -> None:
    ok = (
        b"--batchresponse_x\r\nContent-Type: multipart/mixed; boundary=changesetresponse_y\r\n\r\n"
        b"--changesetresponse_y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b'HTTP/1.1 204 No Content\r\nETag: W/"e1"\r\nDataServiceVersion: 3.0;\r\n\r\n\r\n'
        b"--changesetresponse_y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b'HTTP/1.1 201 Created\r\nETag: W/"e2"\r\n\r\n{"odata.metadata":"x"}\r\n'
        b"--changesetresponse_y--\r\n--batchresponse_x--\r\n"
    )
    parts = batch.parse_answer(ok)
    assert [(status, headers.get("etag")) for status, headers, _ in parts] == [(204, 'W/"e1"'), (201, 'W/"e2"')]
    refused = (
        b"--batchresponse_x\r\nContent-Type: multipart/mixed; boundary=changesetresponse_y\r\n\r\n"
        b"--changesetresponse_y\r\nContent-Type: application/http\r\n\r\n"
        b"HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
        b'{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US",'
        b'"value":"0:The update condition specified in the request was not satisfied."}}}\r\n'
        b"--changesetresponse_y--\r\n--batchresponse_x--\r\n"
    )
    [(status, _, body)] = batch.parse_answer(refused)
    error = batch._error(status, body)
    assert isinstance(error, TableTransactionError)
    code = getattr(error, "error_code", None)
    assert (error.status_code, code, error.index) == (412, "UpdateConditionNotSatisfied", 0)


@pytest.mark.parametrize("index", [0, 1, 2, 4])
async def test_a_single_write_is_the_request_azure_data_tables_sends(index: int) -> None:
    """A one-operation transaction goes as a plain entity request (`batch.write_one`): the method,
    address, If-Match and JSON body of azure-data-tables' create_entity / update_entity / upsert_entity."""
    kind, entity, *rest = OPERATIONS[index]
    options: dict[str, Any] = dict(rest[0]) if rest else {}
    table = TableClient.from_connection_string(_CONN, "hubHistory", transport=_Recorder())
    with pytest.raises(_Captured) as theirs:
        if kind == "create":
            await table.create_entity(entity)
        elif kind == "update":
            await table.update_entity(entity, **options)
        else:
            await table.upsert_entity(entity, **options)
    with pytest.raises(_Captured) as mine:
        await batch.write_one(table, OPERATIONS[index])
    a, b = theirs.value.request, mine.value.request
    assert (b.method, b.url.split("?")[0], b.headers.get("If-Match")) == (
        a.method,
        a.url.split("?")[0],
        a.headers.get("If-Match"),
    )
    assert b.headers["Content-Type"].split(";")[0] == a.headers["Content-Type"].split(";")[0] == "application/json"
    assert json.loads(_body(b)) == json.loads(_body(a))


@pytest.mark.parametrize("delay", [0, 5])
async def test_queue_sends_and_deletes_are_the_requests_azure_storage_queue_sends(delay: int) -> None:
    """Queue messages are put and deleted with requests devhost builds (`queues._put_message`,
    `_delete_message`): the method, address (query included) and body of azure-storage-queue's
    send_message / delete_message, so a storage account takes them as it takes the SDK's."""
    conn = _CONN.replace("TableEndpoint", "QueueEndpoint")
    client = QueueClient.from_connection_string(conn, "hub-control-00", transport=_Recorder())
    text = '{"event":{"Input":"<a & b> \\"é\\""},"id":"1"}'
    pairs = [
        (
            lambda: client.send_message(text, visibility_timeout=delay or None, time_to_live=-1),
            lambda: queues._put_message(client, text, delay),
        ),
        (
            lambda: client.delete_message("id-1", "pop/+=receipt"),
            lambda: queues._delete_message(client, "id-1", "pop/+=receipt"),
        ),
    ]
    for theirs_call, mine_call in pairs:
        with pytest.raises(_Captured) as theirs:
            await theirs_call()
        with pytest.raises(_Captured) as mine:
            await mine_call()
        a, b = theirs.value.request, mine.value.request
        assert (b.method, b.url, b.headers.get("Content-Type")) == (a.method, a.url, a.headers.get("Content-Type"))
        assert (b.content or b"") == (a.content if a.content is not None else a.data or b"")
