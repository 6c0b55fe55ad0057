// The contract between the setup window and its four steps (web/README.md "Steps").
//
// Each step is a Lit element in src/steps/stepN-*.ts that owns ONE section of the configuration:
//   step 1 → syncIdentifiers, step 2 → fieldMapping, step 3 → campaignMapping, step 4 → userMapping.
// The window sets these properties on it and re-renders it when any of them changes:
//   config      the whole working configuration (read it, never mutate it)
//   catalog     GET /api/dynamics/catalog (labels, descriptions, platform fields, options)
//   api         the typed API client (for the step's own look-ups: columns, users, suggestions...)
//   problems    the server's validation problems inside the step's section ({pointer, message});
//               show each next to the control its JSON pointer names (problemAt / problemsUnder)
//   connection  GET /api/dynamics/connection (null while unknown)
// and the step reports every edit with `emitChange(this, section, newSectionValue)`, which fires a
// `config-change` event ({section, value}); the window keeps the working copy, the unsaved-changes state
// and Update (PUT with If-Match).
import { LitElement } from "lit";
import type { Api, Schemas } from "../api/client";

export type DynamicsConfig = Schemas["DynamicsConfig"];
export type Catalog = Schemas["Catalog"];
export type Connection = Schemas["ConnectionView"];
export type Section = "syncIdentifiers" | "fieldMapping" | "campaignMapping" | "userMapping";
export interface FieldProblem {
  pointer: string;
  message: string;
}
export interface ConfigChange<S extends Section = Section> {
  section: S;
  value: DynamicsConfig[S];
}

export interface StepElement extends HTMLElement {
  config: DynamicsConfig;
  catalog: Catalog;
  api: Api;
  problems: FieldProblem[];
  connection: Connection | null;
}

export const STEPS: { number: 1 | 2 | 3 | 4; title: string; section: Section; tag: string }[] = [
  { number: 1, title: "Sync configuration", section: "syncIdentifiers", tag: "step1-sync" },
  { number: 2, title: "Field mapping", section: "fieldMapping", tag: "step2-fields" },
  { number: 3, title: "Campaign mapping", section: "campaignMapping", tag: "step3-campaign" },
  { number: 4, title: "User mapping", section: "userMapping", tag: "step4-users" },
];

/** Lit property declarations every step element uses. */
export const stepProperties = {
  config: { attribute: false },
  catalog: { attribute: false },
  api: { attribute: false },
  problems: { attribute: false },
  connection: { attribute: false },
} as const;

/** The base of the four steps: the properties the window sets (above), typed once. */
export class StepElement extends LitElement {
  declare config: DynamicsConfig;
  declare catalog: Catalog;
  declare api: Api;
  declare problems: FieldProblem[];
  declare connection: Connection | null;
}

export function emitChange<S extends Section>(from: HTMLElement, section: S, value: DynamicsConfig[S]): void {
  from.dispatchEvent(
    new CustomEvent<ConfigChange<S>>("config-change", { detail: { section, value }, bubbles: true, composed: true }),
  );
}

/** The message for exactly this JSON pointer (e.g. "/syncIdentifiers/contactIdentifier"), if any. */
export function problemAt(problems: FieldProblem[], pointer: string): string {
  return problems
    .filter((p) => p.pointer === pointer)
    .map((p) => p.message)
    .join(" ");
}

/** Problems at this pointer or below it. */
export function problemsUnder(problems: FieldProblem[], pointer: string): FieldProblem[] {
  return problems.filter((p) => p.pointer === pointer || p.pointer.startsWith(pointer + "/"));
}

/** Deep copy of plain JSON data, so a step can edit its section and emit the new value. */
export function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
