"""Examples of the OpenAPI document (``core.openapi.document``): request and success bodies per operation,
and under the status (``"503"``) the body of a non-problem alternative answer (``register(alternatives=)``).

Taken from real answers of the local stack (``bash scripts/demo.sh --keep-running`` then curl), with the
local Dataverse stand-in's URL replaced by a Dynamics one. tests/unit/test_openapi_examples.py checks that
each example validates against the operation's models and that every operation with a body has one.

Over 400 lines on purpose: it is data, one example per documented body, kept apart from the models.
"""

from __future__ import annotations

from typing import Any

_NOTIFICATION: dict[str, Any] = {
    "id": "dynamics-reconnect-5f0c9d1e8b7a4c2d9e3f1a2b3c4d5e6f",
    "kind": "dynamics_reconnect_required",
    "reason": "revoked",
    "title": "Reconnect Dynamics 365",
    "message": "Dynamics 365 access was revoked, for example after a password change. Exports are paused "
    "until an admin reconnects.",
    "createdAt": "2026-11-27T09:15:02.118Z",
    "read": False,
    "readAt": None,
}

_JOB_NOTIFICATION: dict[str, Any] = {
    "id": "job-export-partially-failed-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
    "kind": "dynamics_job_partially_failed",
    "reason": None,
    "title": "Dynamics Export partly failed",
    "message": "The export of 1200 contacts ended partly failed: 1150 written (900 created, 250 updated), "
    "30 unchanged, 0 skipped, 20 failed or invalid. Most frequent errors: 0x80040237 (14), invalid (6).",
    "createdAt": "2026-11-27T10:02:44.310Z",
    "read": False,
    "readAt": None,
    "job": {
        "kind": "export",
        "jobId": "0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
        "entity": "contacts",
        "trigger": "automatic",
        "state": "partially_failed",
        "records": 1200,
        "counts": {"created": 900, "updated": 250, "unchanged": 30, "skipped": 0, "failed": 14, "invalid": 6},
        "topErrorCodes": [{"code": "0x80040237", "count": 14}, {"code": "invalid", "count": 6}],
        "link": "/api/dynamics/exports/0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
    },
}

_WEBHOOK: dict[str, Any] = {
    "url": "https://hooks.example.com/dynamics-alerts",
    "updatedAt": "2026-11-27T09:40:12.004Z",
    "updatedBy": "user-admin",
    "secretCreatedAt": "2026-11-27T09:40:12.004Z",
    "events": ["job.failed", "job.partially_failed", "job.paused_reconnect"],
}

# The whole configuration: as the frontend sends it (PUT, validate), saved and read back (GET).
_CONFIG: dict[str, Any] = {
    "syncIdentifiers": {
        "contactIdentifier": "linkedin_or_name_company",
        "contactRule": None,
        "companyIdentifier": "domain",
        "companyDomainAnyExtension": False,
        "companyRule": None,
        "columns": {
            "contactLinkedinUrl": "new_linkedinurl",
            "companyDomain": "websiteurl",
            "companyLinkedinUrl": None,
        },
        "associateContactsWithCompanies": True,
        "associateCompaniesWithContacts": False,
        "exportMissingContacts": False,
        "integrationUser": None,
    },
    "fieldMapping": {
        "contacts": [
            {
                "kind": "platform_field",
                "dynamicsField": "firstname",
                "platformField": "firstName",
                "mode": "overwrite",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "lastname",
                "platformField": "lastName",
                "mode": "overwrite",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "jobtitle",
                "platformField": "jobTitle",
                "mode": "overwrite",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "emailaddress1",
                "platformField": "professionalEmail",
                "mode": "overwrite",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "telephone1",
                "platformField": "phoneNumber",
                "mode": "fill_if_empty",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "new_linkedinurl",
                "platformField": "linkedinUrl",
                "mode": "fill_if_empty",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "new_seniority",
                "platformField": "seniority",
                "mode": "overwrite",
            },
            {
                "kind": "fixed_value",
                "dynamicsField": "description",
                "value": "Sourced by the sales-engagement platform",
                "valueType": "text",
                "mode": "fill_if_empty",
            },
        ],
        "companies": [
            {
                "kind": "platform_field",
                "dynamicsField": "name",
                "platformField": "name",
                "mode": "fill_if_empty",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "websiteurl",
                "platformField": "domain",
                "mode": "fill_if_empty",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "numberofemployees",
                "platformField": "employeeCount",
                "mode": "overwrite",
            },
            {
                "kind": "platform_field",
                "dynamicsField": "address1_city",
                "platformField": "city",
                "mode": "fill_if_empty",
            },
        ],
    },
    "campaignMapping": {
        "campaignSequenceDetails": None,
        "campaignEngagementStatus": "new_campaignstatus",
        "sequenceStatus": "new_sequencestatus",
        "campaignReplyAnalysis": None,
        "campaignOpens": "new_campaignopens",
        "campaignClicks": "new_campaignclicks",
        "campaignOpenAnalysis": None,
        "campaignClickAnalysis": None,
        "campaigns": "new_campaigns",
        "senders": None,
        "activities": "new_activities",
        "conversationTags": None,
        "conversationTagCategories": None,
    },
    "userMapping": {
        "identities": [
            {"identityId": "identity-alex-linkedin", "dynamicsUserId": "0837b8a3-d261-47ab-baa2-e4f90e51f30d"}
        ],
        "users": [
            {"userId": "user-sam", "dynamicsUserId": "b7c93acf-e059-40ee-9132-b63ef16287e4"},
            {"userId": "user-admin", "dynamicsUserId": "07a0ca6e-0822-48f3-ac03-1199972a8469"},
        ],
        "defaultOwnerId": "07a0ca6e-0822-48f3-ac03-1199972a8469",
    },
}

# One export job as its status answers it (also the item of the job list).
_EXPORT_STATUS: dict[str, Any] = {
    "jobId": "a69e127a-0100-47e5-9518-94de3a4def41",
    "entity": "contacts",
    "trigger": "manual",
    "dryRun": False,
    "state": "partially_failed",
    "createdAt": "2026-11-27T09:14:44.183913+00:00",
    "requestedBy": "user-admin",
    "counts": {
        "created": 0,
        "updated": 0,
        "unchanged": 193,
        "skipped": 3,
        "failed": 1,
        "invalid": 3,
        "cancelled": 0,
    },
    "progress": {"records": 200, "processed": 200, "chunks": 4, "chunksDone": 4},
    "errors": [],
    "finishedAt": "2026-11-27T09:15:02.905112+00:00",
    "durationSeconds": 18.721,
    "topErrors": [{"code": "invalid", "count": 3}, {"code": "0x80044331", "count": 1}],
}

# The setup guide's cross-tab case: the company's name kept as text on the contact saves, with a warning.
_CROSSING_CONFIG: dict[str, Any] = {
    **_CONFIG,
    "fieldMapping": {
        **_CONFIG["fieldMapping"],
        "contacts": [
            *_CONFIG["fieldMapping"]["contacts"],
            {
                "kind": "platform_field",
                "dynamicsField": "company",
                "platformField": "company.name",
                "mode": "overwrite",
            },
        ],
    },
}
_CROSSING_WARNING = {
    "pointer": f"/fieldMapping/contacts/{len(_CONFIG['fieldMapping']['contacts'])}/platformField",
    "message": "'company.name' is a company field in the contacts tab: this can cause export errors; if the "
    "companies tab maps column 'company' too, map it the same way there",
}

# A results file's read-only link (core.adapters.storage.result_files): the blob, then its SAS.
_RESULTS_BLOB = (
    "https://stdynamicsprod.blob.core.windows.net/export-staging/"
    "ws-acme/0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10/downloads/"
)


def _results_sas(ext: str) -> str:
    return (
        "st=2026-11-27T09%3A10%3A41Z&se=2026-11-27T09%3A20%3A41Z&sp=r&sv=2025-01-05&sr=b"
        f"&rscd=attachment%3B%20filename%3D%22export-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10-records.{ext}%22"
        "&sig=bm90LWEtcmVhbC1zaWduYXR1cmU%3D"
    )


EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/openapi.json"): {
        "response": {
            "openapi": "3.1.0",
            "info": {
                "title": "Dynamics 365 integration API",
                "version": "1.0.0",
                "x-catalog-version": "2026-11-01",
            },
            "paths": {
                "/api/health": {
                    "get": {"summary": "Storage and Key Vault reachability, within about a second"}
                }
            },
        }
    },
    ("GET", "/api/health"): {
        "response": {
            "status": "ok",
            "checks": {
                "storage": {"status": "ok", "latencyMs": 10.0, "detail": None},
                "keyVault": {"status": "ok", "latencyMs": 2.9, "detail": None},
            },
            "storage": "ok",
            "catalogVersion": "2026-11-01",
            "elapsedMs": 12.4,
        },
        "503": {
            "status": "down",
            "checks": {
                "storage": {
                    "status": "unreachable",
                    "latencyMs": None,
                    "detail": "storage did not answer (ServiceRequestError)",
                },
                "keyVault": {"status": "ok", "latencyMs": 3.1, "detail": None},
            },
            "storage": "unreachable",
            "catalogVersion": "2026-11-01",
            "elapsedMs": 14.8,
        },
    },
    ("GET", "/api/health/dynamics"): {
        "response": {
            "status": "connected",
            "detail": None,
            "reason": None,
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "dynamicsUserId": "4d806f9a-9b2e-46ce-873d-0c75d16401ce",
            "userMatches": True,
            "whoAmI": {
                "userId": "4d806f9a-9b2e-46ce-873d-0c75d16401ce",
                "businessUnitId": "4e1b6c2a-7f55-4b5e-8c1d-2a3b4c5d6e70",
                "organizationId": "1d9f3c5e-0c77-4f37-9c6d-0a5ad3e9d2a1",
                "latencyMs": 67.0,
            },
            "checkedAt": "2026-11-27T09:14:52+00:00",
            "elapsedMs": 72.3,
        }
    },
    ("GET", "/api/integrations"): {
        "response": {
            "integrations": [
                {
                    "crm": "dynamics",
                    "name": "Microsoft Dynamics 365",
                    "enabled": True,
                    "dynamics": {
                        "connection": {
                            "status": "reconnect_required",
                            "integrationUserEmail": "sync@contoso.example",
                            "reconnectReason": "inactivity",
                            "since": "2026-11-30T08:15:00Z",
                        },
                        "configured": {
                            "version": 7,
                            "savedAt": "2026-11-28T16:02:11Z",
                            "savedBy": "platform-admin-1",
                        },
                        "lastExport": {
                            "jobId": "f82e7b97-97c6-4154-a883-462f0fe94d34",
                            "entity": "contacts",
                            "state": "partially_failed",
                            "counts": {
                                "created": 12,
                                "updated": 180,
                                "unchanged": 1,
                                "skipped": 3,
                                "failed": 1,
                                "invalid": 3,
                                "cancelled": 0,
                            },
                            "createdAt": "2026-11-29T10:00:00+00:00",
                        },
                    },
                },
                {"crm": "hubspot", "name": "HubSpot", "enabled": False, "dynamics": None},
                {"crm": "salesforce", "name": "Salesforce", "enabled": False, "dynamics": None},
                {"crm": "pipedrive", "name": "Pipedrive", "enabled": False, "dynamics": None},
            ],
            "activeCrm": "dynamics",
        }
    },
    ("PUT", "/api/integrations/{crm}"): {
        "request": {"enabled": True},
        "response": {"crm": "dynamics", "name": "Microsoft Dynamics 365", "enabled": True},
    },
    ("POST", "/api/dynamics/connect"): {
        "request": {"environmentUrl": "https://contoso.crm4.dynamics.com"},
        "response": {
            "authorizationUrl": "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?client_id=11111111-2222-3333-4444-555555555555&response_type=code&redirect_uri=https%3A%2F%2Ffunc-example.azurewebsites.net%2Fapi%2Fdynamics%2Foauth%2Fcallback&scope=https%3A%2F%2Fcontoso.crm4.dynamics.com%2F.default+offline_access+openid+profile&state=1JKYh6QQBxVIvO7JorBL9RX4-SkNRu52WooCogvchPw&response_mode=query&code_challenge=P0CIOUtZtjLbf_uRMN4Oe5bxZIL_71h3BaQYskX-stw&code_challenge_method=S256&nonce=b8e58673&client_info=1&prompt=select_account"
        },
    },
    ("POST", "/api/dynamics/oauth/complete"): {
        "request": {"handle": "Zq3v9yH1c0mXb7QeLr2TnW8uKdA5sGfJ4pVxYoI6hEk"},
        "response": {
            "status": "connected",
            "signedInAs": "integration.user@contoso.example",
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "dynamicsUserId": "4d806f9a-9b2e-46ce-873d-0c75d16401ce",
            "connectedAt": "2026-11-27T09:14:40.492224Z",
        },
    },
    ("GET", "/api/dynamics/connection"): {
        "response": {
            "status": "connected",
            "integrationUser": {
                "email": "integration.user@contoso.example",
                "dynamicsUserId": "4d806f9a-9b2e-46ce-873d-0c75d16401ce",
            },
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "connectedAt": "2026-11-27T09:14:40.492224Z",
            "lastRefreshAt": "2026-11-27T09:14:40.492224Z",
            "reason": None,
        }
    },
    ("GET", "/api/dynamics/config"): {"response": _CONFIG},
    ("PUT", "/api/dynamics/config"): {
        "request": _CROSSING_CONFIG,
        "response": {**_CROSSING_CONFIG, "warnings": [_CROSSING_WARNING]},
    },
    ("POST", "/api/dynamics/config/validate"): {
        "request": _CROSSING_CONFIG,
        "response": {"valid": True, "errors": [], "warnings": [_CROSSING_WARNING]},
    },
    ("GET", "/api/dynamics/config/history"): {
        "response": {
            "versions": [
                {
                    "version": 4,
                    "savedAt": "2026-11-27T09:14:41+00:00",
                    "savedBy": "user-admin",
                    "step": "user-mapping",
                    "changes": [
                        {"op": "add", "path": "/userMapping/identities/0"},
                        {"op": "add", "path": "/userMapping/users/0"},
                        {"op": "add", "path": "/userMapping/users/1"},
                        {"op": "replace", "path": "/userMapping/defaultOwnerId"},
                    ],
                    "changesTruncated": False,
                }
            ]
        }
    },
    ("GET", "/api/dynamics/config/{step}"): {"response": _CONFIG["userMapping"]},
    ("PUT", "/api/dynamics/config/{step}"): {
        "request": _CONFIG["userMapping"],
        "response": {**_CONFIG["userMapping"], "warnings": []},
    },
    # Abridged: the served catalog lists every field, option, property and kind (GET it for the whole).
    ("GET", "/api/dynamics/catalog"): {
        "response": {
            "catalogVersion": "2026-11-01",
            "campaignFormatVersion": "1",
            "platformFields": {
                "contact": [
                    {
                        "key": "jobTitle",
                        "type": "text",
                        "label": "Job title",
                        "description": "The contact's current job title.",
                        "required": False,
                        "custom": False,
                    }
                ],
                "company": [
                    {
                        "key": "employeeCount",
                        "type": "integer",
                        "label": "Employee count",
                        "description": "Number of employees.",
                        "required": False,
                        "custom": False,
                    }
                ],
                "companyPrefix": "company.",
            },
            "fieldKinds": [
                {
                    "key": "fixed_value",
                    "label": "Fixed Value Fields",
                    "description": "Fields that always export with the same static value.",
                }
            ],
            "modes": [
                {
                    "key": "fill_if_empty",
                    "label": "Sync with Dynamics",
                    "description": "Data only syncs automatically when the destination field is empty, "
                    "preventing overwriting existing values.",
                }
            ],
            "contactIdentifiers": [
                {
                    "key": "name_company",
                    "label": "First name + Last name + Company name",
                    "description": "A contact matches when all three fields are the same in both Enginy and "
                    "Dynamics.",
                }
            ],
            "companyIdentifiers": [
                {
                    "key": "domain",
                    "label": "Domain",
                    "description": "Matches on the company domain (e.g., contoso.com).",
                }
            ],
            "campaignSections": [
                {
                    "key": "email",
                    "label": "Email",
                    "properties": [
                        {
                            "key": "campaignOpens",
                            "label": "Campaign Opens",
                            "contains": "Total number of times a lead has opened one or more emails in the "
                            "campaign.",
                            "example": "5",
                        }
                    ],
                }
            ],
            "engagementStatuses": [
                {
                    "key": "replied",
                    "label": "Replied",
                    "description": "The lead replied to a campaign message.",
                }
            ],
            "sequenceStatuses": [
                {"key": "active", "label": "Active", "description": "The sequence is running for the lead."}
            ],
            "activityKinds": [
                {
                    "key": "email_sent",
                    "label": "Email sent",
                    "description": "Logged as an outgoing email activity.",
                }
            ],
        }
    },
    ("GET", "/api/dynamics/users"): {
        "response": {
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "users": [
                {
                    "id": "b7c93acf-e059-40ee-9132-b63ef16287e4",
                    "fullName": "Ada Lovelace",
                    "email": "ada.lovelace@contoso.com",
                    "businessUnitId": "4e1b6c2a-7f55-4b5e-8c1d-2a3b4c5d6e70",
                    "businessUnitName": "Contoso Sales",
                    "enabled": True,
                }
            ],
            "nextCursor": "eyJ0IjoiPGNvb2tpZSBwYWdlbnVtYmVyPVwiMlwiIC8-IiwiZiI6IjNmNGE1YjZjN2Q4ZTlmMDEifQ",
        }
    },
    ("POST", "/api/dynamics/users/suggestions"): {
        "request": {
            "people": [
                {"platformId": "user-42", "email": "Ada.Lovelace@contoso.com"},
                {"platformId": "identity-7", "email": "sales@acme.example"},
            ]
        },
        "response": {
            "suggestions": [
                {
                    "platformId": "user-42",
                    "email": "Ada.Lovelace@contoso.com",
                    "user": {
                        "id": "b7c93acf-e059-40ee-9132-b63ef16287e4",
                        "fullName": "Ada Lovelace",
                        "email": "ada.lovelace@contoso.com",
                        "businessUnitId": "4e1b6c2a-7f55-4b5e-8c1d-2a3b4c5d6e70",
                        "businessUnitName": "Contoso Sales",
                        "enabled": True,
                    },
                },
                {"platformId": "identity-7", "email": "sales@acme.example", "user": None},
            ]
        },
    },
    ("GET", "/api/dynamics/fields"): {
        "response": {
            "entity": "contact",
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "columns": [
                {
                    "logicalName": "jobtitle",
                    "displayName": "Jobtitle",
                    "type": "String",
                    "requiredLevel": "None",
                    "writable": {"create": True, "update": True},
                    "maxLength": 100,
                    "format": "Text",
                    "options": [],
                    "compatibility": "ok",
                    "reasons": ["text is written as-is"],
                },
                {
                    "logicalName": "numberofchildren",
                    "displayName": "Numberofchildren",
                    "type": "Integer",
                    "requiredLevel": "None",
                    "writable": {"create": True, "update": True},
                    "maxLength": None,
                    "format": None,
                    "options": [],
                    "compatibility": "warning",
                    "reasons": ["text that is not a number will fail"],
                },
            ],
            "platformField": {"name": "jobTitle", "type": "text", "custom": False},
            "counts": {"ok": 25, "warning": 10, "error": 14},
        }
    },
    # Abridged: the served answer has every column of the table and every target.
    ("GET", "/api/dynamics/fields/icons"): {
        "response": {
            "entity": "contact",
            "environmentUrl": "https://contoso.crm4.dynamics.com",
            "version": "3f9a0c1e5b7d2468-e3b0c44298fc1c14-9c4e2a7f1b3d5e60",
            "columns": [
                {
                    "logicalName": "fullname",
                    "displayName": "Full Name",
                    "type": "String",
                    "writable": {"create": False, "update": False},
                },
                {
                    "logicalName": "jobtitle",
                    "displayName": "Job Title",
                    "type": "String",
                    "writable": {"create": True, "update": True},
                },
                {
                    "logicalName": "numberofchildren",
                    "displayName": "No. of Children",
                    "type": "Integer",
                    "writable": {"create": True, "update": True},
                },
            ],
            "targets": [
                {"key": "jobTitle", "kind": "platform_field", "valueType": "text"},
                {"key": "company.employeeCount", "kind": "platform_field", "valueType": "integer"},
                {"key": "fixed_value:boolean", "kind": "fixed_value", "valueType": "boolean"},
                {"key": "campaign:campaignOpens", "kind": "campaign_property", "valueType": None},
            ],
            "reasons": [
                "fullname is read-only in Dynamics",
                "text is written as-is",
                "the number is written as text",
                "written as the text 'true' or 'false'",
                "text that is not a number will fail",
                "whole number",
                "a boolean value cannot be written to a column of type Integer",
            ],
            "outcomes": [
                {"level": "error", "reasons": [0]},
                {"level": "ok", "reasons": [1]},
                {"level": "ok", "reasons": [2]},
                {"level": "warning", "reasons": [3]},
                {"level": "warning", "reasons": [4]},
                {"level": "ok", "reasons": [5]},
                {"level": "error", "reasons": [6]},
            ],
            "cells": [[0, 0, 0, 0], [1, 2, 3, 2], [4, 5, 6, 5]],
        }
    },
    # Abridged: the served answer has every (valueType, attributeType) pair.
    ("GET", "/api/dynamics/compatibility"): {
        "response": {
            "version": "9c4e2a7f1b3d5e60",
            "levels": [
                {"key": "ok", "icon": "blue check", "meaning": "compatible"},
                {"key": "warning", "icon": "yellow", "meaning": "may not fit: review"},
                {
                    "key": "error",
                    "icon": "red",
                    "meaning": "cannot be applied (type mismatch or read-only column): saving is refused",
                },
            ],
            "valueTypes": ["text", "integer", "datetime"],
            "attributeTypes": ["String", "Integer", "DateTime"],
            "pairs": [
                {
                    "valueType": "datetime",
                    "attributeType": "String",
                    "level": "warning",
                    "reason": "written as ISO-8601 text: Dynamics cannot sort or filter it as a date; "
                    "prefer a DateTime column",
                },
                {"valueType": "integer", "attributeType": "Integer", "level": "ok", "reason": "whole number"},
            ],
            "columnRules": [
                {
                    "key": "read_only",
                    "level": "error",
                    "reason": "IsValidForCreate and IsValidForUpdate are both false: Dynamics refuses any "
                    "value",
                }
            ],
        }
    },
    ("POST", "/api/dynamics/exports"): {
        "request": {
            "entity": "contacts",
            "records": [
                {
                    "id": "p-1",
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "professionalEmail": "ada@example.com",
                    "jobTitle": "Analyst",
                    "company": {"id": "co-1", "name": "Analytical Engines Ltd", "domain": "engines.example"},
                }
            ],
        },
        "response": {
            "jobId": "f82e7b97-97c6-4154-a883-462f0fe94d34",
            "accepted": 1,
            "invalid": 0,
            "statusUrl": "/api/dynamics/exports/f82e7b97-97c6-4154-a883-462f0fe94d34",
        },
    },
    ("GET", "/api/dynamics/exports"): {"response": {"jobs": [_EXPORT_STATUS]}},
    ("GET", "/api/dynamics/exports/{jobId}"): {"response": _EXPORT_STATUS},
    ("POST", "/api/dynamics/exports/{jobId}/retry"): {
        "request": {"include": ["skipped"]},
        "response": {
            "jobId": "5f0c2d1e-8a7b-5c3d-9e4f-1a2b3c4d5e6f",
            "accepted": 4,
            "invalid": 0,
            "statusUrl": "/api/dynamics/exports/5f0c2d1e-8a7b-5c3d-9e4f-1a2b3c4d5e6f",
            "retryOf": "a69e127a-0100-47e5-9518-94de3a4def41",
            "notStaged": 0,
        },
    },
    ("POST", "/api/dynamics/exports/{jobId}/cancel"): {
        "response": {
            **_EXPORT_STATUS,
            "state": "cancelled",
            "counts": {
                "created": 500,
                "updated": 12,
                "unchanged": 0,
                "skipped": 3,
                "failed": 0,
                "invalid": 3,
                "cancelled": 1482,
            },
            "progress": {"records": 2000, "processed": 2000, "chunks": 4, "chunksDone": 4},
            "topErrors": [],
            "cancelRequestedAt": "2026-11-27T09:14:51.020034+00:00",
            "cancelledBy": "user-admin",
        }
    },
    ("GET", "/api/dynamics/exports/{jobId}/records.csv"): {
        "200": {
            "url": _RESULTS_BLOB
            + "records-admin.csv.3f1c2b7e9d0a4c6b8e5f1a2d3c4b5a69?"
            + _results_sas("csv"),
            "expiresAt": "2026-11-27T09:20:41Z",
            "fileName": "export-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10-records.csv",
        }
    },
    ("GET", "/api/dynamics/exports/{jobId}/records.ndjson"): {
        "200": {
            "url": _RESULTS_BLOB
            + "records-admin.ndjson.8a2e4f6c1b3d4e5f9a7b6c5d4e3f2a1b?"
            + _results_sas("ndjson"),
            "expiresAt": "2026-11-27T09:20:41Z",
            "fileName": "export-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10-records.ndjson",
        }
    },
    ("GET", "/api/dynamics/exports/{jobId}/records"): {
        "response": {
            "records": [
                {
                    "seq": 0,
                    "platformId": "ct-000",
                    "action": "unchanged",
                    "dynamicsId": "8f313f99-30f8-436e-ae1c-bf4e05b68421",
                    "match": {
                        "status": "matched",
                        "dynamicsId": "8f313f99-30f8-436e-ae1c-bf4e05b68421",
                        "rule": "linkedin",
                        "conditions": [
                            {
                                "platformField": "linkedinUrl",
                                "dynamicsField": "new_linkedinurl",
                                "value": "in/ana-álvarez-0-244ed2f2",
                            }
                        ],
                        "candidates": ["8f313f99-30f8-436e-ae1c-bf4e05b68421"],
                        "searched": [
                            {
                                "platformField": "linkedinUrl",
                                "dynamicsField": "new_linkedinurl",
                                "value": "in/ana-álvarez-0-244ed2f2",
                            },
                            {"platformField": "firstName", "dynamicsField": "firstname", "value": "ana"},
                            {"platformField": "lastName", "dynamicsField": "lastname", "value": "alvarez"},
                            {
                                "platformField": "company.name",
                                "dynamicsField": "parentcustomerid_account/name",
                                "value": "nimbus software 244ed2f2 0 ltd",
                            },
                        ],
                    },
                    "changes": {},
                },
                {
                    "seq": 1,
                    "platformId": "ct-001",
                    "action": "skipped",
                    "dynamicsId": "8f313f99-30f8-436e-ae1c-bf4e05b68421",
                    "note": "same contact as record ct-000 earlier in this export (by the configured "
                    "identifier): exported once",
                    "mergedInto": {
                        "seq": 0,
                        "platformId": "ct-000",
                        "action": "unchanged",
                        "dynamicsId": "8f313f99-30f8-436e-ae1c-bf4e05b68421",
                    },
                },
                {
                    "seq": 2,
                    "platformId": "ct-002",
                    "action": "updated",
                    "dynamicsId": "2b7c0e54-91d3-4f6a-8c2e-5d9a1f3b7e60",
                    "changes": {"jobtitle": {"before": "CTO", "after": "CEO"}},
                    "warnings": [
                        {
                            "code": "company_not_identifiable",
                            "message": "company 'Acme Corp' has none of the values the company identifier "
                            "(domain) compares (domain, website): it is not created in Dynamics, and the "
                            "contact keeps its current company",
                        }
                    ],
                },
            ],
            "nextCursor": "0000003",
        }
    },
    ("POST", "/api/dynamics/activities"): {
        "request": {
            "events": [
                {
                    "id": "evt-000",
                    "contactId": "ct-030",
                    "kind": "email_sent",
                    "at": "2026-11-21T09:00:00Z",
                    "subject": "Intro sent",
                    "identityId": "identity-sam-email",
                }
            ],
            "identities": [
                {"id": "identity-sam-email", "kind": "email", "name": "Sam (e-mail)", "userId": "user-sam"}
            ],
        },
        "response": {
            "jobId": "fa894b6a-c8d3-4afb-ac76-6254a6cfba87",
            "accepted": 1,
            "invalid": 0,
            "statusUrl": "/api/dynamics/activities/fa894b6a-c8d3-4afb-ac76-6254a6cfba87",
        },
    },
    ("GET", "/api/dynamics/activities"): {
        "response": {
            "jobs": [
                {
                    "jobId": "fa894b6a-c8d3-4afb-ac76-6254a6cfba87",
                    "state": "succeeded",
                    "createdAt": "2026-11-27T09:15:30.455165+00:00",
                    "requestedBy": "user-admin",
                    "counts": {
                        "created": 1,
                        "updated": 0,
                        "unchanged": 0,
                        "skipped": 0,
                        "failed": 0,
                        "invalid": 0,
                        "cancelled": 0,
                    },
                    "progress": {"processed": 1, "chunks": 1, "chunksDone": 1, "events": 1},
                    "errors": [],
                    "finishedAt": "2026-11-27T09:15:31.102345+00:00",
                    "durationSeconds": 0.647,
                    "topErrors": [],
                }
            ],
            "nextCursor": None,
        }
    },
    ("GET", "/api/dynamics/activities/{jobId}"): {
        "response": {
            "jobId": "fa894b6a-c8d3-4afb-ac76-6254a6cfba87",
            "state": "succeeded",
            "createdAt": "2026-11-27T09:15:30.455165+00:00",
            "requestedBy": "user-admin",
            "counts": {
                "created": 1,
                "updated": 0,
                "unchanged": 0,
                "skipped": 0,
                "failed": 0,
                "invalid": 0,
                "cancelled": 0,
            },
            "progress": {"processed": 1, "chunks": 1, "chunksDone": 1, "events": 1},
            "errors": [],
            "finishedAt": "2026-11-27T09:15:31.102345+00:00",
            "durationSeconds": 0.647,
            "topErrors": [],
        }
    },
    ("POST", "/api/dynamics/activities/{jobId}/cancel"): {
        "response": {
            "jobId": "fa894b6a-c8d3-4afb-ac76-6254a6cfba87",
            "state": "cancelling",
            "createdAt": "2026-11-27T09:15:30.455165+00:00",
            "requestedBy": "campaign-engine",
            "counts": {
                "created": 1000,
                "updated": 0,
                "unchanged": 0,
                "skipped": 4,
                "failed": 0,
                "invalid": 0,
                "cancelled": 0,
            },
            "progress": {"processed": 1004, "chunks": 3, "chunksDone": 1, "events": 3000},
            "errors": [],
            "topErrors": [],
            "cancelRequestedAt": "2026-11-27T09:15:41.300112+00:00",
            "cancelledBy": "user-admin",
        }
    },
    ("GET", "/api/dynamics/activities/{jobId}/records"): {
        "response": {
            "records": [
                {
                    "seq": 0,
                    "platformId": "evt-900",
                    "action": "created",
                    "dynamicsId": "5b96f0c9-dd41-538b-9f2e-66a397a3a4c9",
                    "match": {
                        "status": "matched",
                        "rule": "created_by_platform",
                        "dynamicsId": "7ca3e879-23ee-5e6b-a7fa-5794d46150f1",
                    },
                    "contactAction": "existing",
                    "activity": {
                        "table": "email",
                        "regardingContactId": "7ca3e879-23ee-5e6b-a7fa-5794d46150f1",
                        "actor": {
                            "source": "user_mapping",
                            "dynamicsUserId": "b7c93acf-e059-40ee-9132-b63ef16287e4",
                            "impersonated": True,
                        },
                    },
                }
            ],
            "nextCursor": None,
        }
    },
    ("GET", "/api/dynamics/usage"): {
        "response": {
            "recorded": True,
            "limits": {
                "requests": 6000,
                "executionSeconds": 1200.0,
                "concurrentRequests": 52,
                "windowSeconds": 300.0,
            },
            "window": {
                "requests": 214,
                "throttled": 0,
                "executionSeconds": 41.873,
                "busiestJob": {
                    "kind": "export",
                    "jobId": "0b7c61f4-31a2-4f0e-9f5a-0d8c2b7e4a11",
                    "requests": 198,
                    "executionSeconds": 39.2,
                },
                "start": "2026-11-27T09:10:00Z",
                "end": "2026-11-27T09:15:02.118000Z",
                "requestsShare": 0.0357,
                "executionShare": 0.0349,
            },
            "days": [
                {
                    "date": "2026-11-27",
                    "requests": 1874,
                    "throttled": 3,
                    "executionSeconds": 402.511,
                    "busiestJob": {
                        "kind": "export",
                        "jobId": "0b7c61f4-31a2-4f0e-9f5a-0d8c2b7e4a11",
                        "requests": 1204,
                        "executionSeconds": 250.3,
                    },
                },
                {
                    "date": "2026-11-26",
                    "requests": 96,
                    "throttled": 0,
                    "executionSeconds": 12.04,
                    "busiestJob": None,
                },
            ],
            "reportedByDynamics": {
                "at": "2026-11-27T09:15:01.904000Z",
                "requestsRemaining": 5772,
                "executionSecondsRemaining": 1154.37,
            },
        }
    },
    ("GET", "/api/notifications"): {"response": {"notifications": [_JOB_NOTIFICATION, _NOTIFICATION]}},
    ("GET", "/api/dynamics/alerts/webhook"): {"response": _WEBHOOK},
    ("PUT", "/api/dynamics/alerts/webhook"): {
        "request": {"url": "https://hooks.example.com/dynamics-alerts", "rotateSecret": False},
        "response": {**_WEBHOOK, "secret": None},
        "201": {**_WEBHOOK, "secret": "whsec_N0t-a-real-secret-only-an-example-of-its-shape00"},
    },
    ("POST", "/api/dynamics/alerts/webhook/test"): {
        "response": {"deliveryId": "test-4be1d0c38a2f4f0d9b3f6f1e2a7c9d55"}
    },
    ("GET", "/api/dynamics/alerts/webhook/deliveries"): {
        "response": {
            "attempts": [
                {
                    "deliveryId": "job-export-failed-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
                    "event": "job.failed",
                    "jobId": "0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
                    "attempt": 2,
                    "at": "2026-11-27T10:03:15.120Z",
                    "statusCode": 200,
                    "outcome": "delivered",
                    "error": None,
                    "nextAttemptAt": None,
                },
                {
                    "deliveryId": "job-export-failed-0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
                    "event": "job.failed",
                    "jobId": "0b6f3c2e-5d41-4a8e-9c1f-2f7d8e6a4b10",
                    "attempt": 1,
                    "at": "2026-11-27T10:02:45.002Z",
                    "statusCode": 500,
                    "outcome": "retry",
                    "error": "HTTP 500",
                    "nextAttemptAt": "2026-11-27T10:03:15.002Z",
                },
            ],
            "nextCursor": None,
        }
    },
    ("POST", "/api/notifications/{notification_id}/read"): {
        "response": {**_NOTIFICATION, "read": True, "readAt": "2026-11-27T09:20:41.512Z"}
    },
}
