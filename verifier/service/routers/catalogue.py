"""GET /v1/catalogue: the licence types and their fields, for pages and clients."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from licence.catalogue import catalogue
from verifier.service.deps import ServicesDep
from verifier.service.models import CatalogueOut

router = APIRouter(prefix="/v1", tags=["catalogue"])


def catalogue_json() -> dict[str, Any]:
    """The catalogue as the API shows it."""

    def label(value: Any) -> dict[str, str] | None:
        return None if value is None else {"zh": value.zh, "en": value.en}

    return {
        "licenceTypes": [
            {
                "id": t.id,
                "code": t.code,
                "name": label(t.name),
                "fields": [
                    {
                        "name": f.name,
                        "label": label(f.label),
                        "kind": f.kind.value,
                        "required": f.required,
                        "personal": f.personal,
                        "mandatoryDisclosure": f.name in t.mandatory_disclosure,
                        "absentMeans": label(f.absent_means),
                    }
                    for f in t.fields
                ],
                "mandatoryDisclosure": [n for n in t.field_names if n in t.mandatory_disclosure],
            }
            for t in catalogue()
        ]
    }


@router.get(
    "/catalogue",
    summary="Licence types and their fields",
    response_model=None,
    responses={200: {"model": CatalogueOut, "description": "The catalogue."}},
)
async def get_catalogue(services: ServicesDep) -> Response:
    """Every licence type: its id, on-chain code, names (zh/en) and fields, each with its
    labels, kind, whether it is required, personal data, or always disclosed."""
    return Response(services.catalogue_json, media_type="application/json")
