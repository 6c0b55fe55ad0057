// The Dynamics columns Step 2 offers, with the icon of each for what would be written to it.
// For a platform field the server decides (GET /api/dynamics/fields?platformField=..., the same check a
// save runs). Fixed, manual-export and engagement values are typed by the column they go to, so their
// icon depends on the column alone: a column that cannot be written, or whose type holds no value the
// window can type, is red; a column writable only on create or only on update is yellow.
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import type { ColumnChoice, Level } from "./column-picker";

export type Column = Schemas["ColumnInfo"];
export type Entity = "contact" | "account";
type FieldType = Schemas["FieldType"];
type Mapping = NonNullable<Schemas["FieldMapping"]["contacts"]>[number];

/** The value type a fixed / engagement / manual-export value gets for this column, or null if none fits. */
export function valueTypeOf(col: Column | undefined): FieldType | null {
  if (!col) return null;
  switch (col.type) {
    case "String":
    case "Memo":
      return col.format === "Email" ? "email" : col.format === "Url" ? "url" : col.format === "Phone" ? "phone" : "text";
    case "Integer":
    case "BigInt":
      return "integer";
    case "Decimal":
    case "Double":
    case "Money":
      return "decimal";
    case "Boolean":
      return "boolean";
    case "DateTime":
      return "datetime";
    case "Picklist":
    case "State":
    case "Status":
      return "choice";
    case "MultiSelectPicklist":
      return "choices";
    default:
      return null;
  }
}

/** The icon of a column for a value typed by the window. */
export function valueIcon(col: Column): { level: Level; reason: string } {
  if (!col.writable.create && !col.writable.update) return { level: "error", reason: `${col.logicalName} is read-only in Dynamics` };
  const type = valueTypeOf(col);
  if (!type) return { level: "error", reason: `a value cannot be written to a column of type ${col.type}` };
  if (!col.writable.update) return { level: "warning", reason: "set only when the record is created; updates leave it unchanged" };
  if (!col.writable.create)
    return { level: "warning", reason: "set only when an existing record is updated; new records get the default" };
  if ((type === "choice" || type === "choices") && !col.options.length)
    return { level: "warning", reason: "the column lists no options to choose from" };
  return { level: "ok", reason: `the value is entered as ${type.replace("_", " ")}, the column's type` };
}

function label(col: Column): string {
  return col.displayName && col.displayName !== col.logicalName ? `${col.displayName} (${col.logicalName})` : col.logicalName;
}

/** Loads and caches the columns of each entity, and per platform field their server-side icons. */
export class ColumnSource {
  private columns = new Map<Entity, Map<string, Column>>();
  private valueChoices = new Map<Entity, ColumnChoice[]>();
  private fieldChoices = new Map<string, ColumnChoice[]>();
  private pending = new Set<string>();

  constructor(
    private api: Api,
    private changed: () => void,
    private failed: (message: string) => void,
  ) {}

  column(entity: Entity, name: string): Column | undefined {
    this.load(entity, null);
    return this.columns.get(entity)?.get(name);
  }

  /** The options for a value (platformField null) or a platform field; null while they load. */
  choices(entity: Entity, platformField: string | null): ColumnChoice[] | null {
    this.load(entity, platformField);
    return platformField === null ? this.valueChoices.get(entity) ?? null : this.fieldChoices.get(`${entity}|${platformField}`) ?? null;
  }

  /** Start loading what the mappings of a tab show. */
  want(entity: Entity, mappings: Mapping[]): void {
    this.load(entity, null);
    for (const m of mappings) if (m.kind === "platform_field") this.load(entity, m.platformField);
  }

  private load(entity: Entity, platformField: string | null): void {
    const key = `${entity}|${platformField ?? ""}`;
    const have = platformField === null ? this.columns.has(entity) : this.fieldChoices.has(key);
    if (have || this.pending.has(key)) return;
    this.pending.add(key);
    const query = platformField === null ? { entity } : { entity, platformField };
    void this.api.GET("/api/dynamics/fields", { params: { query } }).then(({ data, error, response }) => {
      if (!data) {
        this.failed(`The Dynamics columns could not be listed: ${problemText(error, response)}`);
        return; // stays pending: not retried on every render; reopening the step asks again
      }
      this.pending.delete(key);
      if (platformField === null) {
        this.columns.set(entity, new Map(data.columns.map((c) => [c.logicalName, c])));
        this.valueChoices.set(
          entity,
          data.columns.map((c) => ({ value: c.logicalName, label: label(c), ...valueIcon(c) })),
        );
      } else {
        this.fieldChoices.set(
          key,
          data.columns.map((c) => ({
            value: c.logicalName,
            label: label(c),
            level: c.compatibility ?? "ok",
            reason: (c.reasons ?? []).join("; ") || "no known problem",
          })),
        );
      }
      this.changed();
    });
  }
}
