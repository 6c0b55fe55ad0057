"""SchemaName and English DisplayName of the standard tables, and of the standard columns that
``standard_tables.json`` does not name: the system and activity columns of custom tables
(``new_linkedinactivity``) and the sdkmessage / sdkmessagefilter tables. The ten reference tables take their
names from ``standard_tables.json``, which wins over this file.

Real metadata answers ``SchemaName`` in Pascal case (``FirstName``, ``EMailAddress1``, ``DoNotEMail``) and
a display label per column (``Job Title``, ``Business Phone``). The values below follow the table reference
pages (powerapps-docs ``developer/data-platform/reference/entities/<table>.md``, the "SchemaName" heading and
"DisplayName" row of each column) for an English (1033) org; checked one by one against those pages:
contact ``WebSiteUrl`` vs account ``WebSiteURL``, ``DoNotEMail`` ("Do not allow Emails"),
``InternalEMailAddress`` ("Primary Email"), ``AzureActiveDirectoryObjectId`` ("Azure AD Object ID"); the
others are written the same way but not each checked. Display labels are customisable per org, so clients
must not depend on them. A schema file may set ``schema_name`` and ``display_name`` for any column; columns
in neither place get a name derived from the logical name.
"""

from __future__ import annotations

# table logical name -> (SchemaName, DisplayName, DisplayCollectionName)
TABLES: dict[str, tuple[str, str, str]] = {
    "account": ("Account", "Account", "Accounts"),
    "contact": ("Contact", "Contact", "Contacts"),
    "systemuser": ("SystemUser", "User", "Users"),
    "team": ("Team", "Team", "Teams"),
    "businessunit": ("BusinessUnit", "Business Unit", "Business Units"),
    "task": ("Task", "Task", "Tasks"),
    "email": ("Email", "Email", "Email Messages"),
    "phonecall": ("PhoneCall", "Phone Call", "Phone Calls"),
    "appointment": ("Appointment", "Appointment", "Appointments"),
    "activityparty": ("ActivityParty", "Activity Party", "Activity Parties"),
    "sdkmessage": ("SdkMessage", "Sdk Message", "Sdk Messages"),
    "sdkmessagefilter": ("SdkMessageFilter", "Sdk Message Filter", "Sdk Message Filters"),
}

# column logical name -> (SchemaName, DisplayName), for every table that has the column ...
COLUMNS: dict[str, tuple[str, str]] = {
    "createdon": ("CreatedOn", "Created On"),
    "modifiedon": ("ModifiedOn", "Modified On"),
    "overriddencreatedon": ("OverriddenCreatedOn", "Record Created On"),
    "createdby": ("CreatedBy", "Created By"),
    "modifiedby": ("ModifiedBy", "Modified By"),
    "createdonbehalfby": ("CreatedOnBehalfBy", "Created By (Delegate)"),
    "modifiedonbehalfby": ("ModifiedOnBehalfBy", "Modified By (Delegate)"),
    "versionnumber": ("VersionNumber", "Version Number"),
    "ownerid": ("OwnerId", "Owner"),
    "owningbusinessunit": ("OwningBusinessUnit", "Owning Business Unit"),
    "owninguser": ("OwningUser", "Owning User"),
    "owningteam": ("OwningTeam", "Owning Team"),
    "statecode": ("StateCode", "Status"),
    "statuscode": ("StatusCode", "Status Reason"),
    "name": ("Name", "Name"),
    "description": ("Description", "Description"),
    "firstname": ("FirstName", "First Name"),
    "lastname": ("LastName", "Last Name"),
    "middlename": ("MiddleName", "Middle Name"),
    "fullname": ("FullName", "Full Name"),
    "emailaddress1": ("EMailAddress1", "Email"),
    "emailaddress2": ("EMailAddress2", "Email Address 2"),
    "jobtitle": ("JobTitle", "Job Title"),
    "telephone1": ("Telephone1", "Business Phone"),
    "mobilephone": ("MobilePhone", "Mobile Phone"),
    "websiteurl": ("WebSiteUrl", "Website"),
    "address1_city": ("Address1_City", "Address 1: City"),
    "address1_country": ("Address1_Country", "Address 1: Country/Region"),
    "parentcustomerid": ("ParentCustomerId", "Company Name"),
    "numberofchildren": ("NumberOfChildren", "No. of Children"),
    "birthdate": ("BirthDate", "Birthday"),
    "donotemail": ("DoNotEMail", "Do not allow Emails"),
    "accountnumber": ("AccountNumber", "Account Number"),
    "numberofemployees": ("NumberOfEmployees", "Number of Employees"),
    "revenue": ("Revenue", "Annual Revenue"),
    "industrycode": ("IndustryCode", "Industry"),
    "primarycontactid": ("PrimaryContactId", "Primary Contact"),
    "parentaccountid": ("ParentAccountId", "Parent Account"),
    "parentbusinessunitid": ("ParentBusinessUnitId", "Parent Business"),
    "isdisabled": ("IsDisabled", "Is Disabled"),
    "domainname": ("DomainName", "User Name"),
    "internalemailaddress": ("InternalEMailAddress", "Primary Email"),
    "azureactivedirectoryobjectid": ("AzureActiveDirectoryObjectId", "Azure AD Object ID"),
    "businessunitid": ("BusinessUnitId", "Business Unit"),
    "title": ("Title", "Title"),
    "accessmode": ("AccessMode", "Access Mode"),
    "applicationid": ("ApplicationId", "Application ID"),
    "teamtype": ("TeamType", "Team Type"),
    "subject": ("Subject", "Subject"),
    "regardingobjectid": ("RegardingObjectId", "Regarding"),
    "scheduledstart": ("ScheduledStart", "Start Date"),
    "scheduledend": ("ScheduledEnd", "Due Date"),
    "actualstart": ("ActualStart", "Actual Start"),
    "actualend": ("ActualEnd", "Actual End"),
    "prioritycode": ("PriorityCode", "Priority"),
    "activitytypecode": ("ActivityTypeCode", "Activity Type"),
    "percentcomplete": ("PercentComplete", "Percent Complete"),
    "directioncode": ("DirectionCode", "Direction"),
    "sender": ("Sender", "From"),
    "torecipients": ("ToRecipients", "To Recipients"),
    "phonenumber": ("PhoneNumber", "Phone Number"),
    "location": ("Location", "Location"),
    "activityid": ("ActivityId", "Activity"),
    "partyid": ("PartyId", "Party"),
    "participationtypemask": ("ParticipationTypeMask", "Participation Type"),
    "addressused": ("AddressUsed", "Address"),
    "sdkmessageid": ("SdkMessageId", "SDK Message ID"),
    "primaryobjecttypecode": ("PrimaryObjectTypeCode", "Primary Object Type Code"),
    "secondaryobjecttypecode": ("SecondaryObjectTypeCode", "Secondary Object Type Code"),
    "isvisible": ("IsVisible", "Is Visible"),
    "iscustomprocessingstepallowed": ("IsCustomProcessingStepAllowed", "Custom Processing Step Allowed"),
}

# ... except where a table labels it differently.
TABLE_COLUMNS: dict[tuple[str, str], tuple[str, str]] = {
    ("account", "name"): ("Name", "Account Name"),
    ("account", "websiteurl"): ("WebSiteURL", "Website"),
    ("account", "telephone1"): ("Telephone1", "Main Phone"),
    ("team", "name"): ("Name", "Team Name"),
    ("systemuser", "isdisabled"): ("IsDisabled", "Status"),
    ("businessunit", "isdisabled"): ("IsDisabled", "Is Disabled"),
}


def column_names(table: str, column: str) -> tuple[str, str] | None:
    """(SchemaName, DisplayName) of a standard column, or None when it is not one the emulator knows."""
    found = TABLE_COLUMNS.get((table, column))
    if found is not None:
        return found
    if table in TABLES and column == f"{table}id":  # the primary key is labelled like the table
        return f"{TABLES[table][0]}Id", TABLES[table][1]
    return COLUMNS.get(column)
