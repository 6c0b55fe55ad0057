"""DynamicsColumn.from_metadata: attribute objects shaped like the metadata API's answers."""

from __future__ import annotations

from core.domain.catalog import FieldType
from core.domain.compatibility import Level, check_compatibility
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue, RequiredLevel


def label(text: str) -> dict[str, object]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}], "UserLocalizedLabel": {"Label": text}}


def test_string_column() -> None:
    column = DynamicsColumn.from_metadata(
        {
            "LogicalName": "lastname",
            "AttributeType": "String",
            "AttributeTypeName": {"Value": "StringType"},
            "DisplayName": label("Last Name"),
            "MaxLength": 50,
            "IsValidForCreate": True,
            "IsValidForUpdate": True,
            "RequiredLevel": {"Value": "ApplicationRequired", "CanBeChanged": True},
            "MetadataId": "00000000-0000-0000-0000-000000000001",
        }
    )
    assert column.attribute_type is AttributeType.STRING
    assert (column.max_length, column.display_name) == (50, "Last Name")
    assert column.required_level is RequiredLevel.APPLICATION_REQUIRED
    assert not column.is_read_only


def test_multi_select_is_recognised_from_the_type_name() -> None:
    column = DynamicsColumn.from_metadata(
        {
            "LogicalName": "new_languages",
            "AttributeType": "Virtual",
            "AttributeTypeName": {"Value": "MultiSelectPicklistType"},
            "OptionSet": {
                "Options": [{"Value": 1, "Label": label("English")}, {"Value": 2, "Label": label("Spanish")}]
            },
        }
    )
    assert column.attribute_type is AttributeType.MULTI_SELECT_PICKLIST
    assert column.options == (OptionValue(1, "English"), OptionValue(2, "Spanish"))
    assert check_compatibility(FieldType.CHOICES, column).level is Level.OK


def test_numeric_type_codes_and_global_option_sets() -> None:
    column = DynamicsColumn.from_metadata(
        {
            "LogicalName": "industrycode",
            "AttributeType": 11,
            "OptionSet": None,
            "GlobalOptionSet": {"Options": [{"Value": 7, "Label": label("Retail")}]},
        }
    )
    assert column.attribute_type is AttributeType.PICKLIST
    assert column.options == (OptionValue(7, "Retail"),)


def test_status_options_carry_their_state_and_boolean_options_both_values() -> None:
    status = DynamicsColumn.from_metadata(
        {
            "LogicalName": "statuscode",
            "AttributeType": "Status",
            "OptionSet": {"Options": [{"Value": 1, "State": 0, "Label": label("Active")}]},
        }
    )
    assert status.options == (OptionValue(1, "Active", state=0),)
    boolean = DynamicsColumn.from_metadata(
        {
            "LogicalName": "donotemail",
            "AttributeType": "Boolean",
            "OptionSet": {
                "TrueOption": {"Value": 1, "Label": label("Do Not Allow")},
                "FalseOption": {"Value": 0, "Label": label("Allow")},
            },
        }
    )
    assert {o.value: o.label for o in boolean.options} == {0: "Allow", 1: "Do Not Allow"}


def test_lookup_targets_and_read_only_flags() -> None:
    lookup = DynamicsColumn.from_metadata(
        {"LogicalName": "parentcustomerid", "AttributeType": "Customer", "Targets": ["account", "contact"]}
    )
    assert lookup.is_lookup and lookup.targets == ("account", "contact")
    fullname = DynamicsColumn.from_metadata(
        {
            "LogicalName": "fullname",
            "AttributeType": "String",
            "IsValidForCreate": False,
            "IsValidForUpdate": False,
        }
    )
    assert fullname.is_read_only
    assert check_compatibility(FieldType.TEXT, fullname).level is Level.ERROR


def test_date_only_behaviour_and_unknown_types() -> None:
    birthday = DynamicsColumn.from_metadata(
        {"LogicalName": "birthdate", "AttributeType": "DateTime", "DateTimeBehavior": {"Value": "DateOnly"}}
    )
    assert birthday.format == "DateOnly"
    odd = DynamicsColumn.from_metadata({"LogicalName": "x", "AttributeType": "Image"})
    assert odd.attribute_type is AttributeType.VIRTUAL  # unknown -> never writable
    assert check_compatibility(FieldType.TEXT, odd).level is Level.ERROR
