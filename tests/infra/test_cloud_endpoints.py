"""The app reaches storage through the endpoint URIs infra/ gives it, in any Azure cloud.

infra/ sets `AzureWebJobsStorage__blobServiceUri` (and queue/table) from the storage
account's primaryEndpoints, which carry the cloud's own DNS suffix (core.windows.net,
core.chinacloudapi.cn, core.usgovcloudapi.net, ...). The report store must use that URI
as given and never derive one from an account name.
"""

from __future__ import annotations

import pytest

from update_service import report_store

CHINA_BLOB = "https://stexample.blob.core.chinacloudapi.cn/"


def test_reports_use_the_blob_service_uri_infra_provides() -> None:
    env = {
        "AzureWebJobsStorage__blobServiceUri": CHINA_BLOB,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
    }
    with report_store.blob_service(env) as service:
        assert service.url == CHINA_BLOB
        assert service.account_name == "stexample"


def test_an_account_name_alone_is_not_turned_into_a_public_cloud_host() -> None:
    with pytest.raises(RuntimeError, match="AzureWebJobsStorage__blobServiceUri"):
        report_store.blob_service({"AzureWebJobsStorage__accountName": "stexample"})


def test_a_connection_string_still_wins_locally() -> None:
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__blobServiceUri": CHINA_BLOB}
    with report_store.blob_service(env) as s:
        assert s.url.startswith("http://127.0.0.1:10000/devstoreaccount1")
