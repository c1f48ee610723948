#!/usr/bin/env python3
"""The product page's journey, with a client generated from `/openapi.json` by
openapi-python-client (see README.md next to this file):

  a dashboard token creates an API key; the key reads who it is and the balance, renders
  documents, lists them a page at a time; the key is revoked, and the next request is 401.

Environment: BASE_URL (default http://127.0.0.1:8080), TOKEN (a dashboard token,
`api-actix tokens issue --user EMAIL`), RENDERS (documents to render, default 3), PAGE_LIMIT
(`limit` of each page, default 2). The generated package must be importable as
`jobtactics_client` (generate it with `--output-path jobtactics_client`).

Each step prints one JSON line: what the API answered, never the full key.
"""

import json
import os
import sys
import time
import uuid

import httpx
from jobtactics_client import AuthenticatedClient
from jobtactics_client.api.dashboard import create_key, revoke_key
from jobtactics_client.api.public import (
    get_balance,
    get_document,
    get_me,
    list_documents,
    render_document,
)
from jobtactics_client.models import CreateKeyRequest, ErrorBody, RenderDocumentRequest
from jobtactics_client.types import UNSET


def show(step, **facts):
    print(json.dumps({"step": step, **facts}), flush=True)


def expect(response, status, what):
    """Stops the journey when `response` is not `status`, showing the API's error."""
    if response.status_code != status:
        sys.exit(
            f"{what}: expected {status}, got {int(response.status_code)}: "
            f"{response.content.decode(errors='replace')}"
        )
    return response.parsed


def main():
    base_url = os.environ.get("BASE_URL", "http://127.0.0.1:8080")
    renders = int(os.environ.get("RENDERS", "3"))
    page_limit = int(os.environ.get("PAGE_LIMIT", "2"))
    # raise_on_unexpected_status: a status the OpenAPI document does not list for an operation
    # raises instead of passing unnoticed.
    options = {"raise_on_unexpected_status": True, "timeout": httpx.Timeout(10.0)}

    # 1. "Settings → API keys": the dashboard token creates a key. The full key is in this
    #    response only. An Idempotency-Key makes the creation safe to retry.
    dashboard = AuthenticatedClient(
        base_url=base_url, token=os.environ["TOKEN"], **options
    )
    created = expect(
        create_key.sync_detailed(
            client=dashboard,
            body=CreateKeyRequest(name=f"generated-client-{uuid.uuid4().hex[:12]}"),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        "creating a key",
    )
    show(
        "create_key",
        status=201,
        id=created.id,
        name=created.name,
        preview=created.preview,
        key_status=str(created.status),
        key_matches_preview=created.key.startswith(created.preview.split("...")[0]),
    )

    # 2. The key at work: who it is, and the balance.
    api = AuthenticatedClient(base_url=base_url, token=created.key, **options)
    me = expect(get_me.sync_detailed(client=api), 200, "GET /api/v1/public/me")
    show(
        "me",
        status=200,
        user_id=me.user_id,
        key_id=me.key.id,
        scopes=[str(s) for s in me.scopes],
    )
    balance = expect(get_balance.sync_detailed(client=api), 200, "reading the balance")
    show("balance", status=200, balance=balance.balance)

    # 3. Render documents, 1 credit each, each with its own Idempotency-Key.
    rendered = []
    for n in range(renders):
        document = expect(
            render_document.sync_detailed(
                client=api,
                body=RenderDocumentRequest.from_dict(
                    {"template_id": "classic", "fields": {"name": f"Ada {n}"}}
                ),
                idempotency_key=str(uuid.uuid4()),
            ),
            201,
            "rendering a document",
        )
        rendered.append(document.id)
        show(
            "render",
            status=201,
            id=document.id,
            charged=document.charged,
            balance=document.balance,
        )
    balance = expect(get_balance.sync_detailed(client=api), 200, "reading the balance")
    show("balance_after", status=200, balance=balance.balance)
    if rendered:
        document = expect(
            get_document.sync_detailed(rendered[0], client=api),
            200,
            "reading a document",
        )
        show(
            "get_document",
            status=200,
            id=document.id,
            template_id=document.template_id,
            content_length=len(document.content),
        )

    # 4. List the documents, newest first, a page at a time: pass the last id of a page as
    #    `starting_after` for the next one.
    after = UNSET
    while True:
        page = expect(
            list_documents.sync_detailed(
                client=api, limit=page_limit, starting_after=after
            ),
            200,
            "listing documents",
        )
        ids = [item.id for item in page.data]
        show("list_page", status=200, ids=ids, has_more=page.has_more)
        if not page.has_more:
            break
        after = ids[-1]

    # 5. Revoke the key from the dashboard; it is refused from then on (on every instance
    #    within a second: ask again until then).
    revoked = expect(
        revoke_key.sync_detailed(created.id, client=dashboard), 200, "revoking the key"
    )
    show("revoke", status=200, id=revoked.id, key_status=str(revoked.status))
    deadline = time.monotonic() + 2
    while True:
        response = get_me.sync_detailed(client=api)
        if response.status_code == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    error = response.parsed
    show(
        "after_revoke",
        status=int(response.status_code),
        error_type=error.error.type_ if isinstance(error, ErrorBody) else None,
        www_authenticate=response.headers.get("www-authenticate"),
    )


if __name__ == "__main__":
    main()
