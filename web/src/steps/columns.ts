// The Dynamics columns Step 2 offers, with the icon of each for what would be written to it. All icons of a
// table come in one call, GET /api/dynamics/fields/icons (every column x every platform field and every
// value kind and type: the same check a save runs); the columns' details the value inputs need (choice
// options, format, length) come from GET /api/dynamics/fields. A fixed, manual-export or engagement value
// is typed by the column it goes to, so its icon is the cell of "<kind>:<the column's value type>".
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import type { ColumnChoice } from "./column-picker";

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

function label(col: { logicalName: string; displayName?: string | null }): string {
  return col.displayName && col.displayName !== col.logicalName ? `${col.displayName} (${col.logicalName})` : col.logicalName;
}

type Matrix = Schemas["IconMatrixPage"];
export type Kind = Mapping["kind"];

/** Loads and caches, per table, its columns and the matrix of their icons. */
export class ColumnSource {
  private columns = new Map<Entity, Map<string, Column>>();
  private matrices = new Map<Entity, Matrix>();
  private memo = new Map<string, ColumnChoice[]>();
  private pending = new Set<Entity>();

  constructor(
    private api: Api,
    private changed: () => void,
    private failed: (message: string) => void,
  ) {}

  column(entity: Entity, name: string): Column | undefined {
    this.load(entity);
    return this.columns.get(entity)?.get(name);
  }

  /** The options of a Dynamics dropdown for a platform field or for a value of a kind; null while loading. */
  choices(entity: Entity, kind: Kind, platformField: string): ColumnChoice[] | null {
    this.load(entity);
    const matrix = this.matrices.get(entity);
    const columns = this.columns.get(entity);
    if (!matrix || !columns) return null;
    const key = `${entity}|${kind}|${platformField}`;
    const known = this.memo.get(key);
    if (known) return known;
    const targetIndex = new Map(matrix.targets.map((t, i) => [t.key, i]));
    const made = matrix.columns.flatMap((col, c) => {
      const target =
        kind === "platform_field"
          ? platformField
          : `${kind}:${valueTypeOf(columns.get(col.logicalName)) ?? "text"}`;
      const t = targetIndex.get(target);
      if (t === undefined) return [];
      const outcome = matrix.outcomes[matrix.cells[c][t]];
      return [
        {
          value: col.logicalName,
          label: label(col),
          level: outcome.level,
          reason: outcome.reasons.map((r) => matrix.reasons[r]).join("; ") || "no known problem",
        },
      ];
    });
    this.memo.set(key, made);
    return made;
  }

  private load(entity: Entity): void {
    if (this.matrices.has(entity) || this.pending.has(entity)) return;
    this.pending.add(entity); // stays pending after a failure: not retried on every render
    void Promise.all([
      this.api.GET("/api/dynamics/fields/icons", { params: { query: { entity } } }),
      this.api.GET("/api/dynamics/fields", { params: { query: { entity } } }),
    ]).then(([icons, fields]) => {
      if (!icons.data || !fields.data) {
        const failed = icons.data ? fields : icons;
        this.failed(`The Dynamics columns could not be listed: ${problemText(failed.error, failed.response)}`);
        return;
      }
      this.pending.delete(entity);
      this.columns.set(entity, new Map(fields.data.columns.map((c) => [c.logicalName, c])));
      this.matrices.set(entity, icons.data);
      this.changed();
    });
  }
}
