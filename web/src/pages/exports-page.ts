// The Exports page: choose a list (a sample built like the demo's data, or a CSV file), give the values of
// the manual-export fields the configuration asks for, dry run it (what each record would get: the columns
// it would write, before and after) or export it, watch the job's progress, and read each record's outcome:
// how it matched a Dynamics record, what Dynamics refused (its code and message), filtered by outcome.
// Below, the workspace's recent exports (export-history.ts): cancel, retry, download the results files.
// Over 400 lines on purpose: one page whose parts (list, manual values, dry run, progress, results) share
// the job being run; the list parsing, the sample lists and the history live in their own modules.
import { LitElement, css, html, nothing } from "lit";
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";
import { CsvProblem, MAX_CSV_BYTES, parseCsvList } from "./csv-list";
import { pageSizeFrom } from "./export-history";
import { ENDED, STATE_LABELS } from "./job-states";
import { SAMPLE_LISTS, type PlatformRecord } from "./sample-lists";

type Entity = Schemas["ExportEntity"];
type Status = Schemas["ExportStatus"];
type RecordResult = Schemas["RecordResult"];
type Action = Schemas["RecordAction"];
type ManualField = Schemas["ManualExportMapping"];
type Condition = Schemas["MatchCondition"];

const UPLOAD = "upload";
const POLL_MS = 500;
const PAGE = 100;

const ACTION_LABELS: Record<Action, string> = {
  created: "Created",
  updated: "Updated",
  unchanged: "Unchanged",
  skipped: "Skipped",
  failed: "Failed",
  invalid: "Invalid",
  would_create: "Would create",
  would_update: "Would update",
  would_fail: "Would fail",
  creating: "Creating",
  updating: "Updating",
  pending: "Pending",
  cancelled: "Cancelled",
};
// Platform fields as people read them (the match explanation names the platform side in words).
const FIELD_LABELS: Record<string, string> = {
  linkedinUrl: "LinkedIn URL",
  firstName: "first name",
  lastName: "last name",
  professionalEmail: "work e-mail",
  "company.name": "company name",
  "company.domain": "company domain",
  name: "name",
  domain: "domain",
};

function fieldLabel(platformField: string): string {
  return FIELD_LABELS[platformField] ?? platformField;
}

function conditionText(c: Condition): string {
  return `${fieldLabel(c.platformField)} ~ ${c.dynamicsField} = ${c.value}`;
}

/** How a record found (or did not find) its Dynamics record, in one sentence. */
export function matchText(match: Schemas["MatchExplanation"] | null | undefined): string {
  if (!match) return "";
  const conditions = match.conditions ?? [];
  if (match.status === "matched") {
    if (match.rule === "created_by_platform") return "Matched by the Dynamics id this platform created it with";
    return conditions.length
      ? `Matched by ${conditions.map(conditionText).join(" and ")}`
      : `Matched by the ${match.rule ?? "configured"} rule`;
  }
  if (match.status === "ambiguous") {
    return `Several Dynamics records match (${(match.candidates ?? []).join(", ")}): none was changed`;
  }
  const searched = match.searched ?? [];
  return searched.length
    ? `No Dynamics record matches ${searched.map(conditionText).join(", ")}`
    : "No Dynamics record matches";
}

function show(value: unknown): string {
  if (value === undefined || value === null || value === "") return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function recordName(record: PlatformRecord | undefined): string {
  if (!record) return "";
  const person = [record.firstName, record.lastName].filter(Boolean).join(" ");
  return person || String(record.name ?? "");
}

export class ExportsPage extends LitElement {
  static properties = {
    api: { attribute: false },
    listId: { state: true },
    uploaded: { state: true },
    uploadError: { state: true },
    entity: { state: true },
    manualFields: { state: true },
    manualValues: { state: true },
    configError: { state: true },
    submitError: { state: true },
    job: { state: true },
    records: { state: true },
    nextCursor: { state: true },
    filter: { state: true },
    busy: { state: true },
  };

  declare api: Api;
  declare listId: string;
  declare uploaded: { name: string; records: PlatformRecord[] } | null;
  declare uploadError: string;
  declare entity: Entity;
  declare manualFields: Record<Entity, ManualField[]>;
  declare manualValues: Record<string, string>;
  declare configError: string;
  declare submitError: string;
  declare job: Status | null;
  declare records: RecordResult[];
  declare nextCursor: string | null;
  declare filter: Action | "";
  declare busy: boolean;
  private submitted: PlatformRecord[] = [];
  private timer: number | undefined;

  constructor() {
    super();
    this.listId = SAMPLE_LISTS[0].id;
    this.uploaded = null;
    this.uploadError = "";
    this.entity = SAMPLE_LISTS[0].entity;
    this.manualFields = { contacts: [], companies: [] };
    this.manualValues = {};
    this.configError = "";
    this.submitError = "";
    this.job = null;
    this.records = [];
    this.nextCursor = null;
    this.filter = "";
    this.busy = false;
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.loadConfig();
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    window.clearTimeout(this.timer);
  }

  private async loadConfig(): Promise<void> {
    const { data, error, response } = await this.api.GET("/api/dynamics/config");
    if (!data) {
      this.configError = problemText(error, response);
      return;
    }
    const manual = (list: Schemas["DynamicsConfig"]["fieldMapping"]["contacts"]) =>
      (list ?? []).filter((m): m is ManualField => m.kind === "manual_export");
    this.manualFields = { contacts: manual(data.fieldMapping.contacts), companies: manual(data.fieldMapping.companies) };
    this.configError = "";
  }

  private list(): PlatformRecord[] {
    if (this.listId === UPLOAD) return this.uploaded?.records ?? [];
    return SAMPLE_LISTS.find((l) => l.id === this.listId)?.records ?? [];
  }

  private chooseList(event: Event): void {
    this.listId = (event.target as HTMLSelectElement).value;
    const sample = SAMPLE_LISTS.find((l) => l.id === this.listId);
    if (sample) this.entity = sample.entity;
  }

  private async readFile(event: Event): Promise<void> {
    const file = (event.target as HTMLInputElement).files?.[0];
    this.uploaded = null;
    this.uploadError = "";
    if (!file) return;
    if (file.size > MAX_CSV_BYTES) {
      this.uploadError = `${file.name} is larger than ${MAX_CSV_BYTES / 1024 / 1024} MB.`;
      return;
    }
    try {
      this.uploaded = { name: file.name, records: parseCsvList(await file.text()) };
    } catch (e) {
      this.uploadError = e instanceof CsvProblem ? `${file.name}: ${e.message}` : `${file.name} could not be read.`;
    }
  }

  private manualValuesBody(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const field of this.manualFields[this.entity]) {
      const raw = (this.manualValues[field.dynamicsField] ?? "").trim();
      if (raw === "") continue;
      if (field.valueType === "integer" || field.valueType === "decimal") out[field.dynamicsField] = Number(raw);
      else if (field.valueType === "boolean") out[field.dynamicsField] = raw === "true";
      else out[field.dynamicsField] = raw;
    }
    return out;
  }

  private async start(dryRun: boolean): Promise<void> {
    const records = this.list();
    this.submitError = "";
    if (!records.length) {
      this.submitError = this.listId === UPLOAD ? "Choose a CSV file first." : "The list is empty.";
      return;
    }
    window.clearTimeout(this.timer);
    this.busy = true;
    this.job = null;
    this.records = [];
    this.filter = "";
    let answer;
    try {
      answer = await this.api.POST("/api/dynamics/exports", {
        body: {
          entity: this.entity,
          records,
          manualValues: this.manualValuesBody(),
          dryRun,
          trigger: "manual",
          userId: null,
          identityId: null,
        },
      });
    } finally {
      if (!answer?.data) this.busy = false; // no job to watch: the buttons are usable again
    }
    const { data, error, response } = answer;
    if (!data) {
      const problems = (error as { errors?: { pointer: string; message: string }[] } | undefined)?.errors ?? [];
      this.submitError = [problemText(error, response), ...problems.map((p) => `${p.pointer}: ${p.message}`)].join(
        " ",
      );
      return;
    }
    this.submitted = records;
    void this.renderRoot.querySelector("export-history")?.refresh(); // the new job, with its Cancel
    await this.poll(data.jobId);
  }

  private async poll(jobId: string): Promise<void> {
    let settled = false;
    try {
      const { data, error, response } = await this.api.GET("/api/dynamics/exports/{jobId}", {
        params: { path: { jobId } },
      });
      if (!data) {
        settled = true;
        this.busy = false;
        this.submitError = problemText(error, response);
        return;
      }
      this.job = data;
      if (ENDED.includes(data.state)) {
        settled = true;
        this.busy = false;
        await this.loadRecords(false);
        await this.renderRoot.querySelector("export-history")?.refresh();
      }
    } finally {
      // A round that threw is not an answer: ask again rather than leave the page busy for ever.
      if (!settled) this.timer = window.setTimeout(() => void this.poll(jobId), POLL_MS);
    }
  }

  private async loadRecords(more: boolean): Promise<void> {
    if (!this.job) return;
    const { data, error, response } = await this.api.GET("/api/dynamics/exports/{jobId}/records", {
      params: {
        path: { jobId: this.job.jobId },
        query: {
          limit: PAGE,
          ...(this.filter ? { status: this.filter } : {}),
          ...(more && this.nextCursor ? { cursor: this.nextCursor } : {}),
        },
      },
    });
    if (!data) {
      this.submitError = problemText(error, response);
      return;
    }
    this.records = more ? [...this.records, ...data.records] : data.records;
    this.nextCursor = data.nextCursor ?? null;
  }

  private chooseFilter(event: Event): void {
    this.filter = (event.target as HTMLSelectElement).value as Action | "";
    void this.loadRecords(false);
  }

  render() {
    return html`
      <section aria-labelledby="exports-title">
        <h2 id="exports-title">Exports</h2>
        <p class="lead">Send a list of ${this.entity} to Dynamics 365. A dry run shows what would change without writing anything.</p>
        ${this.renderList()} ${this.renderManual()} ${this.renderActions()} ${this.renderProgress()}
        ${this.renderResults()}
        <export-history .api=${this.api} .pageSize=${pageSizeFrom(location.search)}></export-history>
      </section>
    `;
  }

  private renderList() {
    const records = this.list();
    return html`<fieldset>
      <legend>1. The list</legend>
      <label for="list">List to export</label>
      <select id="list" @change=${this.chooseList} .value=${this.listId}>
        ${SAMPLE_LISTS.map(
          (l) => html`<option value=${l.id} ?selected=${this.listId === l.id}>
            ${l.label} (${l.records.length} ${l.entity})
          </option>`,
        )}
        <option value=${UPLOAD} ?selected=${this.listId === UPLOAD}>Upload a CSV file…</option>
      </select>
      ${this.listId === UPLOAD
        ? html`<label for="entity">The file holds</label>
            <select id="entity" @change=${(e: Event) => (this.entity = (e.target as HTMLSelectElement).value as Entity)}>
              <option value="contacts" ?selected=${this.entity === "contacts"}>contacts</option>
              <option value="companies" ?selected=${this.entity === "companies"}>companies</option>
            </select>
            <label for="csv">CSV file</label>
            <input id="csv" type="file" accept=".csv,text/csv" aria-describedby="csv-hint" @change=${this.readFile} />
            <p id="csv-hint" class="hint">
              Up to ${MAX_CSV_BYTES / 1024 / 1024} MB. The first row names the platform fields, an <code>id</code>
              column included, e.g. <code>id,firstName,lastName,professionalEmail,linkedinUrl,company.name,company.domain</code>.
            </p>
            ${this.uploadError ? html`<p role="alert" class="error">${this.uploadError}</p>` : nothing}`
        : nothing}
      <p data-testid="list-summary" aria-live="polite">
        ${records.length
          ? `${records.length} ${this.entity} ready${this.uploaded && this.listId === UPLOAD ? ` from ${this.uploaded.name}` : ""}.`
          : "No records yet."}
      </p>
      ${records.length
        ? html`<details>
            <summary>Show the records</summary>
            <ul class="preview">
              ${records.slice(0, 50).map((r) => html`<li>${String(r.id)}: ${recordName(r)}</li>`)}
            </ul>
            ${records.length > 50 ? html`<p>… and ${records.length - 50} more.</p>` : nothing}
          </details>`
        : nothing}
    </fieldset>`;
  }

  private renderManual() {
    const fields = this.manualFields[this.entity];
    return html`<fieldset>
      <legend>2. Manual-export values</legend>
      ${this.configError ? html`<p role="alert" class="error">${this.configError}</p>` : nothing}
      ${fields.length
        ? html`<p class="hint">The configuration asks for these values at each export; they go to every record.</p>
            ${fields.map(
              (f) => html`<div class="field">
                <label for="manual-${f.dynamicsField}">${f.dynamicsField} (${f.valueType})</label>
                <input
                  id="manual-${f.dynamicsField}"
                  type=${f.valueType === "integer" || f.valueType === "decimal" ? "number" : "text"}
                  .value=${this.manualValues[f.dynamicsField] ?? ""}
                  @input=${(e: Event) =>
                    (this.manualValues = { ...this.manualValues, [f.dynamicsField]: (e.target as HTMLInputElement).value })}
                />
              </div>`,
            )}`
        : html`<p>No manual-export fields are configured for ${this.entity} (Step 2 of the setup).</p>`}
    </fieldset>`;
  }

  private renderActions() {
    return html`<div class="actions">
      <button class="btn" ?disabled=${this.busy} @click=${() => void this.start(true)}>Dry run</button>
      <button class="btn primary" ?disabled=${this.busy} @click=${() => void this.start(false)}>Export to Dynamics</button>
      ${this.submitError ? html`<p role="alert" class="error">${this.submitError}</p>` : nothing}
    </div>`;
  }

  private renderProgress() {
    const job = this.job;
    const kind = job?.dryRun ? "Dry run" : "Export";
    const text = job
      ? `${kind} ${STATE_LABELS[job.state]}: ${job.progress.processed} of ${job.progress.records} records.`
      : this.busy
        ? "Starting…"
        : "";
    return html`<div class="progress">
      ${job
        ? html`<progress
            aria-label="${kind} progress"
            max=${Math.max(job.progress.records, 1)}
            .value=${job.progress.processed}
          ></progress>`
        : nothing}
      <p role="status" aria-live="polite" data-testid="job-status">${text}</p>
      ${job?.errors.length ? html`<ul class="error">${job.errors.map((e) => html`<li>${e}</li>`)}</ul>` : nothing}
    </div>`;
  }

  private renderResults() {
    const job = this.job;
    if (!job || !ENDED.includes(job.state)) return nothing;
    const counts = job.counts;
    const dry = job.dryRun;
    const actions: Action[] = dry
      ? ["would_create", "would_update", "unchanged", "skipped", "would_fail", "invalid"]
      : ["created", "updated", "unchanged", "skipped", "failed", "invalid"];
    return html`<section aria-labelledby="results-title" class="results">
      <h3 id="results-title">${dry ? "Dry run results" : "Export results"}</h3>
      <dl class="counts" data-testid="counts">
        ${(["created", "updated", "unchanged", "skipped", "failed", "invalid"] as const).map(
          (k) => html`<div><dt>${dry && (k === "created" || k === "updated") ? `would be ${k}` : k}</dt><dd>${counts[k]}</dd></div>`,
        )}
      </dl>
      <div class="filters">
        <label for="filter">Show</label>
        <select id="filter" @change=${this.chooseFilter}>
          <option value="" ?selected=${this.filter === ""}>every record</option>
          ${actions.map((a) => html`<option value=${a} ?selected=${this.filter === a}>${ACTION_LABELS[a]}</option>`)}
        </select>
      </div>
      <p class="visually-hidden" aria-live="polite">${this.records.length} records shown.</p>
      ${this.records.length ? nothing : html`<p>No records with this outcome.</p>`}
      <ul class="records" aria-label="Records">
        ${this.records.map((r) => this.renderRecord(r))}
      </ul>
      ${this.nextCursor
        ? html`<button class="btn" @click=${() => void this.loadRecords(true)}>Show more records</button>`
        : nothing}
    </section>`;
  }

  private renderRecord(r: RecordResult) {
    const source = this.submitted[r.seq];
    const changes = Object.entries((r.changes ?? {}) as Record<string, { before?: unknown; after?: unknown }>);
    const errors = r.errors ?? [];
    const bad = r.action === "failed" || r.action === "invalid" || r.action === "would_fail";
    return html`<li class="record" data-action=${r.action}>
      <div class="record-head">
        <h4>${r.platformId}${recordName(source) ? html` <span class="name">${recordName(source)}</span>` : nothing}</h4>
        <span class="badge ${bad ? "bad" : ""}">${ACTION_LABELS[r.action]}</span>
      </div>
      ${r.match ? html`<p class="match" data-testid="match">${matchText(r.match)}</p>` : nothing}
      ${r.dynamicsId ? html`<p class="hint">Dynamics id ${r.dynamicsId}</p>` : nothing}
      ${r.note ? html`<p>${r.note}</p>` : nothing}
      ${errors.length
        ? html`<ul class="errors">
            ${errors.map(
              (e) => html`<li class="error">
                ${e.code ? html`<code>${e.code}</code> ` : nothing}${e.field}: ${e.message}
              </li>`,
            )}
          </ul>`
        : nothing}
      ${(r.warnings ?? []).map((w) => html`<p class="warn">${w.message}</p>`)}
      ${changes.length
        ? html`<table>
            <caption class="visually-hidden">Columns of ${r.platformId}, before and after</caption>
            <thead><tr><th scope="col">Column</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
            <tbody>
              ${changes.map(
                ([column, change]) => html`<tr>
                  <th scope="row">${column}</th>
                  <td>${show(change?.before)}</td>
                  <td>${show(change?.after)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}
    </li>`;
  }

  static styles = [
    base,
    css`
      :host { display: block; }
      h2 { margin: 0 0 0.25rem; font-size: 1.3rem; }
      .lead, .hint { color: var(--muted); }
      fieldset { border: 1px solid var(--line); border-radius: 10px; background: var(--surface);
        margin: 0 0 1rem; padding: 0.75rem 1rem; min-width: 0; }
      legend { font-weight: 600; padding: 0 0.3rem; }
      label { display: block; font-weight: 600; margin: 0.5rem 0 0.2rem; }
      select, input { max-width: 100%; min-height: 2.25rem; border: 1px solid var(--muted); border-radius: 6px;
        padding: 0.25rem 0.5rem; background: var(--surface); color: var(--ink); }
      input[type="text"], input[type="number"] { width: 24rem; }
      code { overflow-wrap: anywhere; }
      .preview { max-height: 12rem; overflow: auto; margin: 0.25rem 0; }
      .actions, .filters { display: flex; flex-wrap: wrap; gap: 0.5rem 0.75rem; align-items: center; margin: 0 0 1rem; }
      .filters label { margin: 0; }
      .actions p { flex-basis: 100%; margin: 0; }
      progress { width: 100%; height: 1rem; accent-color: var(--primary); }
      .progress p { margin: 0.25rem 0 1rem; }
      .counts { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0 0 1rem; }
      .counts div { border: 1px solid var(--line); border-radius: 8px; padding: 0.3rem 0.75rem; background: var(--surface); }
      .counts dt { color: var(--muted); font-size: 0.85rem; text-transform: capitalize; }
      .counts dd { margin: 0; font-size: 1.2rem; font-weight: 600; }
      .records { list-style: none; padding: 0; margin: 0; display: grid; gap: 0.75rem; }
      .record { border: 1px solid var(--line); border-radius: 10px; background: var(--surface); padding: 0.75rem 1rem;
        overflow-wrap: anywhere; }
      .record-head { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.5rem; align-items: baseline; }
      .record h4 { margin: 0; font-size: 1rem; }
      .name { color: var(--muted); font-weight: 400; }
      .record p { margin: 0.35rem 0; }
      .badge { border-radius: 999px; padding: 0.1rem 0.6rem; background: var(--canvas); border: 1px solid var(--line); }
      .badge.bad { color: var(--bad); border-color: var(--bad); }
      .warn { color: var(--warn); }
      .errors { margin: 0.35rem 0; padding-left: 1.2rem; }
      table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; font-size: 0.92rem; }
      th, td { border: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
      thead th { background: var(--canvas); }
    `,
  ];
}

customElements.define("exports-page", ExportsPage);

declare global {
  interface HTMLElementTagNameMap {
    "exports-page": ExportsPage;
  }
}
