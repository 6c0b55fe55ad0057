// Drives the npm client `dynamics-web-api` (pinned in package.json) UNCHANGED against the Dataverse emulator
// and prints one JSON object: for every step, {"ok": true, "value": ...} or {"ok": false, "error": ...}.
// test_dataverse_npm_conformance.py starts the emulator, runs this script with node and asserts on the report.
// Environment: DATAVERSE_URL (https://127.0.0.1:<port>/), DATAVERSE_TOKEN, NODE_EXTRA_CA_CERTS (local CA).
"use strict";

const { DynamicsWebApi } = require("dynamics-web-api");

const api = new DynamicsWebApi({
  serverUrl: process.env.DATAVERSE_URL,
  dataApi: { version: "9.2" },
  onTokenRefresh: async () => process.env.DATAVERSE_TOKEN,
});
const tag = `Npm${Date.now().toString(36)}`;
const report = {};

async function step(name, run) {
  try {
    report[name] = { ok: true, value: await run() };
  } catch (error) {
    report[name] = { ok: false, error: { message: String(error && error.message), status: error && error.status } };
  }
  return report[name].ok ? report[name].value : undefined;
}

async function main() {
  await step("whoami", async () => (await api.callFunction("WhoAmI")).UserId);

  const created = await step("create", async () => {
    const row = await api.create({
      collection: "contacts",
      data: { firstname: "Ada", lastname: tag, emailaddress1: `ada.${tag}@example.com` },
      returnRepresentation: true,
      select: ["contactid", "fullname"],
    });
    return { id: row.contactid, fullname: row.fullname };
  });
  const contactId = created && created.id;

  await step("retrieve", async () => {
    const row = await api.retrieve({ collection: "contacts", key: contactId, select: ["fullname", "emailaddress1"] });
    return { fullname: row.fullname, emailaddress1: row.emailaddress1, etag: row["@odata.etag"] };
  });

  await step("update_with_etag", async () => {
    const before = await api.retrieve({ collection: "contacts", key: contactId, select: ["contactid"] });
    await api.update({
      collection: "contacts",
      key: contactId,
      data: { jobtitle: "Engineer" },
      ifmatch: before["@odata.etag"],
    });
    const row = await api.retrieve({ collection: "contacts", key: contactId, select: ["jobtitle"] });
    return row.jobtitle;
  });

  await step("stale_etag_is_refused", async () => {
    // With If-Match the library reports a 412 as `false` instead of throwing (its legacy error handling).
    const returned = await api.update({
      collection: "contacts",
      key: contactId,
      data: { jobtitle: "Stale" },
      ifmatch: 'W/"1"',
    });
    const row = await api.retrieve({ collection: "contacts", key: contactId, select: ["jobtitle"] });
    return { returned, jobtitle: row.jobtitle };
  });

  await step("upsert_by_alternate_key", async () => {
    const key = `emailaddress1='grace.${tag}@example.com'`;
    await api.upsert({ collection: "contacts", key, data: { firstname: "Grace", lastname: tag } });
    await api.upsert({ collection: "contacts", key, data: { jobtitle: "Admiral" } });
    const rows = await api.retrieveMultiple({
      collection: "contacts",
      select: ["firstname", "jobtitle"],
      filter: `emailaddress1 eq 'grace.${tag}@example.com'`,
    });
    return rows.value.map((r) => [r.firstname, r.jobtitle]);
  });

  const batch = await step("batch_change_set", async () => {
    api.startBatch();
    api.create({ collection: "accounts", data: { name: `Account ${tag}` }, contentId: "1" });
    for (let i = 0; i < 6; i++) {
      api.create({
        collection: "contacts",
        data: { firstname: `Page${i}`, lastname: tag, "parentcustomerid_account@odata.bind": "$1" },
      });
    }
    const responses = await api.executeBatch();
    return { count: responses.length, accountId: responses[0] };
  });
  const accountId = batch && batch.accountId;

  await step("failed_change_set_rolls_back", async () => {
    api.startBatch();
    api.create({ collection: "contacts", data: { firstname: "Rollback", lastname: tag } });
    api.create({ collection: "contacts", data: { no_such_column: 1 } });
    let failed = false;
    try {
      await api.executeBatch();
    } catch (error) {
      failed = true;
    }
    const rows = await api.retrieveMultiple({
      collection: "contacts",
      select: ["contactid"],
      filter: `lastname eq '${tag}' and firstname eq 'Rollback'`,
    });
    return { failed, left: rows.value.length };
  });

  await step("paging", async () => {
    const first = await api.retrieveMultiple({
      collection: "contacts",
      select: ["contactid"],
      filter: `lastname eq '${tag}'`,
      maxPageSize: 3,
    });
    const all = await api.retrieveAll({
      collection: "contacts",
      select: ["contactid"],
      filter: `lastname eq '${tag}'`,
      maxPageSize: 3,
    });
    const ids = all.value.map((r) => r.contactid);
    return {
      firstPage: first.value.length,
      hasNextLink: Boolean(first.oDataNextLink),
      total: ids.length,
      distinct: new Set(ids).size,
    };
  });

  await step("associate_collection", async () => {
    await api.associate({
      collection: "accounts",
      primaryKey: accountId,
      relationshipName: "contact_customer_accounts",
      relatedCollection: "contacts",
      relatedKey: contactId,
    });
    const row = await api.retrieve({ collection: "contacts", key: contactId, select: ["_parentcustomerid_value"] });
    return row._parentcustomerid_value;
  });

  await step("expand_collection", async () => {
    const row = await api.retrieve({
      collection: "accounts",
      key: accountId,
      select: ["name"],
      expand: [{ property: "contact_customer_accounts", select: ["firstname"] }],
    });
    return row.contact_customer_accounts.length;
  });

  await step("disassociate_collection", async () => {
    await api.disassociate({
      collection: "accounts",
      primaryKey: accountId,
      relationshipName: "contact_customer_accounts",
      relatedKey: contactId,
    });
    const row = await api.retrieve({ collection: "contacts", key: contactId, select: ["_parentcustomerid_value"] });
    return row._parentcustomerid_value;
  });

  await step("many_to_many", async () => {
    const userId = (await api.callFunction("WhoAmI")).UserId;
    const unit = (await api.retrieveMultiple({ collection: "businessunits", select: ["businessunitid"] })).value[0];
    const team = await api.create({
      collection: "teams",
      data: { name: `Team ${tag}`, "businessunitid@odata.bind": `/businessunits(${unit.businessunitid})` },
      returnRepresentation: true,
      select: ["teamid"],
    });
    await api.associate({
      collection: "teams",
      primaryKey: team.teamid,
      relationshipName: "teammembership_association",
      relatedCollection: "systemusers",
      relatedKey: userId,
    });
    const linked = await api.retrieve({
      collection: "teams",
      key: team.teamid,
      select: ["name"],
      expand: [{ property: "teammembership_association", select: ["systemuserid"] }],
    });
    await api.disassociate({
      collection: "teams",
      primaryKey: team.teamid,
      relationshipName: "teammembership_association",
      relatedKey: userId,
    });
    const after = await api.retrieve({
      collection: "teams",
      key: team.teamid,
      select: ["name"],
      expand: [{ property: "teammembership_association", select: ["systemuserid"] }],
    });
    return {
      linked: linked.teammembership_association.map((u) => u.systemuserid),
      after: after.teammembership_association.length,
    };
  });

  await step("entity_metadata", async () => {
    const entity = await api.retrieveEntity({
      key: "LogicalName='contact'",
      select: ["EntitySetName", "PrimaryIdAttribute", "PrimaryNameAttribute"],
    });
    return [entity.EntitySetName, entity.PrimaryIdAttribute, entity.PrimaryNameAttribute];
  });

  await step("picklist_cast_with_nested_expand", async () => {
    const response = await api.retrieveAttributes({
      entityKey: "LogicalName='contact'",
      castType: "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
      select: ["LogicalName"],
      expand: [{ property: "OptionSet", select: ["Options"] }],
    });
    const gender = response.value.find((a) => a.LogicalName === "gendercode");
    return gender.OptionSet.Options.map((o) => [o.Value, o.Label.UserLocalizedLabel.Label]);
  });

  await step("string_cast_single_attribute", async () => {
    const attribute = await api.retrieveAttribute({
      entityKey: "LogicalName='contact'",
      attributeKey: "LogicalName='emailaddress1'",
      castType: "Microsoft.Dynamics.CRM.StringAttributeMetadata",
      select: ["LogicalName", "MaxLength"],
    });
    return [attribute.LogicalName, attribute.MaxLength];
  });

  await step("delete", async () => {
    await api.deleteRecord({ collection: "contacts", key: contactId });
    try {
      await api.retrieve({ collection: "contacts", key: contactId, select: ["contactid"] });
      return "still there";
    } catch (error) {
      return error.status;
    }
  });
}

main()
  .catch((error) => {
    report.fatal = { ok: false, error: { message: String(error && error.stack) } };
  })
  .finally(() => {
    process.stdout.write(JSON.stringify(report) + "\n");
  });
