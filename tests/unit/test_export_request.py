"""One bad row never blocks the others: it ends `invalid` with every problem named."""

import pytest
from pydantic import ValidationError

from core.domain.catalog import Entity, FieldType, PlatformField
from core.domain.export_request import ExportRequest, validate_records
from core.domain.jobs import ExportEntity, RecordAction


def test_good_records_pass_and_bad_ones_list_every_problem() -> None:
    records = [
        {
            "id": "c1",
            "firstName": "Zoë",
            "lastName": "O'Brien",
            "company": {"name": "Acme", "domain": "acme.com"},
        },
        {
            "id": "c2",
            "professionalEmail": "nope",
            "yearsInRole": "three",
            "company": {"employeeCount": "many"},
        },
        {"firstName": "no id"},
        "not an object",
        {"id": "c1", "firstName": "again"},
    ]
    valid, invalid = validate_records(ExportEntity.CONTACTS, records)
    assert [v.platform_id for v in valid] == ["c1"]
    by_seq = {o.seq: o for o in invalid}
    assert set(by_seq) == {1, 2, 3, 4}
    assert all(o.action is RecordAction.INVALID for o in invalid)
    fields = {e.field for e in by_seq[1].errors}
    assert fields == {"professionalEmail", "yearsInRole", "company.employeeCount"}
    assert by_seq[2].errors[0].field == "id"
    assert "earlier in this export" in by_seq[4].errors[0].message


def test_custom_fields_are_type_checked_like_catalog_fields() -> None:
    custom = [PlatformField("leadScore", Entity.CONTACT, FieldType.INTEGER, custom=True)]
    valid, invalid = validate_records(ExportEntity.CONTACTS, [{"id": "a", "leadScore": "high"}], custom)
    assert not valid and invalid[0].errors[0].field == "leadScore"


def test_company_contacts_list_shape() -> None:
    valid, invalid = validate_records(
        ExportEntity.COMPANIES,
        [{"id": "k1", "name": "Acme", "contacts": [{"id": "c1"}]}, {"id": "k2", "contacts": "c1"}],
    )
    assert [v.platform_id for v in valid] == ["k1"] and invalid[0].errors[0].field == "contacts"


def test_envelope_rejects_unknown_keys_and_empty_lists() -> None:
    with pytest.raises(ValidationError):
        ExportRequest.model_validate({"entity": "contacts", "records": []})
    with pytest.raises(ValidationError):
        ExportRequest.model_validate({"entity": "leads", "records": [{"id": "x"}]})
    with pytest.raises(ValidationError):
        ExportRequest.model_validate({"entity": "contacts", "records": [{"id": "x"}], "dryrun": True})
    ok = ExportRequest.model_validate({"entity": "companies", "records": [{"id": "x"}], "dryRun": True})
    assert ok.dryRun and ok.trigger.value == "manual"
