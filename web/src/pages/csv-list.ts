// A list to export from a CSV file, read in the browser (RFC 4180: comma separated, double quotes around
// cells holding commas, quotes or line breaks, "" for a quote). The first row names the platform fields;
// a dotted name fills a nested object ("company.name"). Bounded before parsing; every refusal names the
// row (as a spreadsheet numbers it, the header being row 1) and the column.
import type { PlatformRecord } from "./sample-lists";

export const MAX_CSV_BYTES = 2 * 1024 * 1024;
export const MAX_CSV_ROWS = 5000;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?$/;
const NUMBERS = new Set(["employeeCount", "company.employeeCount"]);

export class CsvProblem extends Error {}

function rows(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  let i = 0;
  const endRow = () => {
    row.push(cell);
    out.push(row);
    row = [];
    cell = "";
    if (out.length > MAX_CSV_ROWS + 1) {
      throw new CsvProblem(`The file has more than ${MAX_CSV_ROWS} rows; split it into smaller files.`);
    }
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else cell += ch;
      i++;
      continue;
    }
    if (ch === '"' && cell === "") quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRow();
    } else cell += ch;
    i++;
  }
  if (quoted) throw new CsvProblem(`Row ${out.length + 1}: a quoted cell is never closed.`);
  if (cell !== "" || row.length) endRow();
  return out.filter((r) => r.some((c) => c.trim() !== ""));
}

/** The records a CSV file holds; CsvProblem (its message names the row and column) when it cannot be read. */
export function parseCsvList(text: string): PlatformRecord[] {
  if (new Blob([text]).size > MAX_CSV_BYTES) {
    throw new CsvProblem(`The file is larger than ${MAX_CSV_BYTES / 1024 / 1024} MB.`);
  }
  const all = rows(text.replace(/^\uFEFF/, ""));
  if (all.length < 2) throw new CsvProblem("The file needs a header row and at least one record.");
  const header = all[0].map((h) => h.trim());
  header.forEach((name, index) => {
    if (!FIELD_NAME.test(name)) {
      throw new CsvProblem(`Row 1, column ${index + 1}: "${name}" is not a platform field name.`);
    }
    if (header.indexOf(name) !== index) throw new CsvProblem(`Row 1: the column "${name}" appears twice.`);
  });
  if (!header.includes("id")) throw new CsvProblem('Row 1: a column "id" (the platform id) is required.');
  return all.slice(1).map((cells, r) => {
    const rowNumber = r + 2;
    if (cells.length !== header.length) {
      throw new CsvProblem(`Row ${rowNumber} has ${cells.length} cells; the header has ${header.length}.`);
    }
    const record: PlatformRecord = {};
    cells.forEach((raw, c) => {
      const value = raw.trim();
      const name = header[c];
      if (value === "") return;
      let typed: unknown = value;
      if (NUMBERS.has(name)) {
        typed = Number(value);
        if (!Number.isInteger(typed)) {
          throw new CsvProblem(`Row ${rowNumber}, column "${name}": "${value}" is not a whole number.`);
        }
      }
      const [outer, inner] = name.split(".");
      if (inner === undefined) record[outer] = typed;
      else record[outer] = { ...((record[outer] as PlatformRecord | undefined) ?? {}), [inner]: typed };
    });
    if (!record.id) throw new CsvProblem(`Row ${rowNumber}, column "id": the platform id is empty.`);
    return record;
  });
}
