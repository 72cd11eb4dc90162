"""GET /v1/catalogue: every shipped type as the page and clients read it, anonymous, kept
by the browser and revalidated by ETag."""

from __future__ import annotations

from licence.catalogue import catalogue


def test_catalogue_serves_every_type_with_version_owners_and_field_rules(service):
    answer = service.client.get("/v1/catalogue")
    assert answer.status_code == 200
    served = {t["id"]: t for t in answer.json()["licenceTypes"]}
    assert list(served) == [t.id for t in catalogue()]
    physician = served["physician-certificate"]
    assert physician["version"] == 1 and physician["code"] == 17
    assert physician["owners"][0]["zh"] == "广东省卫生健康委员会"
    id_number = next(f for f in physician["fields"] if f["name"] == "idNumber")
    assert id_number["personal"] is True and id_number["maxLength"] == 18
    assert id_number["pattern"].startswith("^[1-9][0-9]{5}")
    # The field order is the payload's layout: exactly the catalogue's.
    for licence_type in catalogue():
        names = [f["name"] for f in served[licence_type.id]["fields"]]
        assert tuple(names) == licence_type.field_names


def test_catalogue_is_anonymous_and_kept_by_the_browser_with_an_etag(service):
    answer = service.client.get("/v1/catalogue")
    assert answer.headers["cache-control"] == "no-cache"
    tag = answer.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    again = service.client.get("/v1/catalogue", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    weak = service.client.get("/v1/catalogue", headers={"If-None-Match": f'"x", W/{tag}'})
    assert weak.status_code == 304
    other = service.client.get("/v1/catalogue", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.json()["licenceTypes"]
