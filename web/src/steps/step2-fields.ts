// Step 2, Field mapping: the Contacts and Companies tabs, each with the four kinds of the setup guide
// (platform fields, fixed values, manual-export fields, one engagement field), the mode of each mapping,
// and the compatibility icon on every Dynamics column offered. The server checks what is saved: its
// errors and warnings (the cross-tab warning among them) show next to the control their pointer names,
// live from POST /api/dynamics/config/validate?step=field-mapping and from Update.
// Over 400 lines because the tabs, the add form and the typed value inputs share one state and one
// rendering of a mapping; the column dropdown and the icon data are in column-picker.ts / columns.ts.
import { css, html, nothing } from "lit";
import type { Schemas } from "../api/client";
import { base } from "../ui/styles";
import {
  copy,
  emitChange,
  problemAt,
  StepElement,
  stepProperties,
  type FieldProblem,
} from "./contract";
import type { ColumnChoice } from "./column-picker";
import "./column-picker";
import { ColumnSource, valueTypeOf, type Column, type Entity } from "./columns";

type FieldMapping = Schemas["FieldMapping"];
type Mapping = NonNullable<FieldMapping["contacts"]>[number];
type Kind = Mapping["kind"];
type FieldType = Schemas["FieldType"];
type Mode = Schemas["Mode"];
type Tab = "contacts" | "companies";

interface Draft {
  kind: Kind;
  platformField: string;
  dynamicsField: string;
  value: unknown;
  mode: Mode;
}

const TABS: { key: Tab; label: string; entity: Entity }[] = [
  { key: "contacts", label: "Contacts", entity: "contact" },
  { key: "companies", label: "Companies", entity: "account" },
];
const KINDS: Kind[] = ["platform_field", "fixed_value", "manual_export", "engagement"];
const KIND_FALLBACK: Record<Kind, string> = {
  platform_field: "Enginy Fields",
  fixed_value: "Fixed Value Fields",
  manual_export: "Manual Export Fields",
  engagement: "Engagement Fields",
};

export class Step2Fields extends StepElement {
  static properties = {
    ...stepProperties,
    tab: { state: true },
    draft: { state: true },
    live: { state: true },
    loadError: { state: true },
    version: { state: true },
  };

  declare tab: Tab;
  declare draft: Draft | null;
  declare live: { errors: FieldProblem[]; warnings: FieldProblem[] };
  declare loadError: string;
  declare version: number;
  private source: ColumnSource | null = null;
  private validated = "";
  private validateTimer = 0;
  private validateSeq = 0;
  private liveFresh = false; // the live check has answered since the window's problems (from Update) came

  constructor() {
    super();
    this.problems = [];
    this.connection = null;
    this.tab = "contacts";
    this.draft = null;
    this.live = { errors: [], warnings: [] };
    this.loadError = "";
    this.version = 0;
  }

  private get mapping(): FieldMapping {
    return this.config.fieldMapping as FieldMapping;
  }

  private rows(tab: Tab): Mapping[] {
    return this.mapping[tab] ?? [];
  }

  private get entity(): Entity {
    return TABS.find((t) => t.key === this.tab)!.entity;
  }

  willUpdate(changed: Map<string, unknown>): void {
    if (changed.has("api") && this.api) {
      this.source = new ColumnSource(this.api, () => (this.version += 1), (e) => (this.loadError = e));
    }
    if (changed.has("problems")) this.liveFresh = false;
    if (changed.has("config") && this.config) {
      const json = JSON.stringify(this.mapping);
      if (json !== this.validated) {
        this.validated = json;
        window.clearTimeout(this.validateTimer);
        this.validateTimer = window.setTimeout(() => void this.validate(), 300);
      }
    }
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    window.clearTimeout(this.validateTimer);
  }

  /** The server's errors and warnings for the mapping as it is now (nothing is saved). */
  private async validate(): Promise<void> {
    const seq = ++this.validateSeq;
    const { data } = await this.api.POST("/api/dynamics/config/validate", {
      params: { query: { step: "field-mapping" } },
      body: this.mapping,
    });
    if (seq !== this.validateSeq || !data) return;
    const under = (list: FieldProblem[]) => list.filter((p) => p.pointer.startsWith("/fieldMapping"));
    this.liveFresh = true;
    this.live = { errors: under(data.errors), warnings: under(data.warnings) };
  }

  private set(tab: Tab, list: Mapping[]): void {
    emitChange(this, "fieldMapping", { ...copy(this.mapping), [tab]: list });
  }

  private update_(index: number, patch: Partial<Mapping>): void {
    const list = copy(this.rows(this.tab));
    list[index] = { ...list[index], ...patch } as Mapping;
    this.set(this.tab, list);
  }

  private removeAt(index: number): void {
    const list = copy(this.rows(this.tab));
    list.splice(index, 1);
    this.set(this.tab, list);
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(`#panel-${this.tab} h4`)?.focus());
  }

  /** The server's errors: Update's until the live check answers for a later edit, then the live ones. */
  private get errors(): FieldProblem[] {
    return this.liveFresh ? this.live.errors : [...this.problems, ...this.live.errors];
  }

  private errorAt(pointer: string): string {
    const seen = new Set<string>();
    return this.errors
      .filter((p) => p.pointer === pointer && !seen.has(p.message) && seen.add(p.message))
      .map((p) => p.message)
      .join(" ");
  }

  private warningAt(pointer: string): string {
    return problemAt(this.live.warnings, pointer);
  }

  private kindLabel(kind: Kind): Schemas["Option"] {
    return this.catalog.fieldKinds.find((k) => k.key === kind) ?? { key: kind, label: KIND_FALLBACK[kind], description: "" };
  }

  private platformFields(tab: Tab): { own: Schemas["PlatformFieldEntry"][]; company: Schemas["PlatformFieldEntry"][] } {
    const fields = this.catalog.platformFields;
    return tab === "contacts" ? { own: fields.contact, company: fields.company } : { own: fields.company, company: [] };
  }

  private fieldLabel(key: string): string {
    const prefix = this.catalog.platformFields.companyPrefix;
    if (key.startsWith(prefix)) {
      const f = this.catalog.platformFields.company.find((c) => c.key === key.slice(prefix.length));
      return `Company: ${f?.label ?? key.slice(prefix.length)}`;
    }
    const own = this.tab === "contacts" ? this.catalog.platformFields.contact : this.catalog.platformFields.company;
    return own.find((f) => f.key === key)?.label ?? key;
  }

  /** The options of a Dynamics dropdown, each with its icon, for a platform field or for a typed value. */
  private choices(kind: Kind, platformField: string): { choices: ColumnChoice[]; loading: boolean } {
    void this.version;
    if (!this.source) return { choices: [], loading: true };
    if (kind === "platform_field" && !platformField) return { choices: [], loading: false };
    const got = this.source.choices(this.entity, kind, platformField);
    return got ? { choices: got, loading: false } : { choices: [], loading: true };
  }

  private column(name: string): Column | undefined {
    return this.source?.column(this.entity, name);
  }

  // ---- the add form ----

  private startDraft(kind: Kind): void {
    this.draft = { kind, platformField: "", dynamicsField: "", value: null, mode: "overwrite" };
    void this.updateComplete.then(() =>
      this.renderRoot.querySelector<HTMLElement>(kind === "platform_field" ? "#draft-platform" : "#draft-column")?.focus(),
    );
  }

  private draftReady(d: Draft): boolean {
    if (!d.dynamicsField || (d.kind === "platform_field" && !d.platformField)) return false;
    if (d.kind === "fixed_value" || d.kind === "engagement") return d.value !== null && d.value !== "";
    return true;
  }

  private addDraft(): void {
    const d = this.draft;
    if (!d || !this.draftReady(d)) return;
    const valueType = valueTypeOf(this.column(d.dynamicsField)) ?? "text";
    let entry: Mapping;
    if (d.kind === "platform_field") {
      entry = { kind: "platform_field", platformField: d.platformField, dynamicsField: d.dynamicsField, mode: d.mode };
    } else if (d.kind === "manual_export") {
      // No value: it is given at export time (the schema forbids one here).
      entry = { kind: "manual_export", dynamicsField: d.dynamicsField, valueType, mode: d.mode } as Mapping;
    } else {
      entry = { kind: d.kind, dynamicsField: d.dynamicsField, value: d.value, valueType, mode: d.mode };
    }
    this.set(this.tab, [...copy(this.rows(this.tab)), entry]);
    this.draft = null;
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(`#add-${d.kind}`)?.focus());
  }

  private renderDraft(kind: Kind) {
    const d = this.draft;
    if (!d || d.kind !== kind) return nothing;
    const { choices, loading } = this.choices(kind, d.platformField);
    const fields = this.platformFields(this.tab);
    const prefix = this.catalog.platformFields.companyPrefix;
    const crossing = this.tab === "contacts" && d.platformField.startsWith(prefix);
    const col = this.column(d.dynamicsField);
    return html`<div class="draft" role="group" aria-label="New ${this.kindLabel(kind).label.replace(/s$/, "").toLowerCase()}">
      ${kind === "platform_field"
        ? html`<label class="field">
            Platform field
            <select
              id="draft-platform"
              aria-describedby=${crossing ? "draft-crossing" : nothing}
              @change=${(e: Event) =>
                (this.draft = { ...d, platformField: (e.target as HTMLSelectElement).value, dynamicsField: "" })}
            >
              <option value="" ?selected=${!d.platformField}>Choose a platform field…</option>
              <optgroup label=${this.tab === "contacts" ? "Contact fields" : "Company fields"}>
                ${fields.own.map((f) => html`<option value=${f.key} ?selected=${d.platformField === f.key}>${f.label}</option>`)}
              </optgroup>
              ${fields.company.length
                ? html`<optgroup label="Company fields (may cause export errors in this tab)">
                    ${fields.company.map(
                      (f) =>
                        html`<option value="${prefix}${f.key}" ?selected=${d.platformField === prefix + f.key}>Company: ${f.label}</option>`,
                    )}
                  </optgroup>`
                : nothing}
            </select>
          </label>
          ${crossing ? html`<p class="warn" id="draft-crossing">${this.crossingText()}</p>` : nothing}`
        : nothing}
      <column-picker
        id="draft-column"
        label="Dynamics column"
        .value=${d.dynamicsField}
        .choices=${choices}
        ?loading=${loading}
        @column-change=${(e: CustomEvent<string>) => (this.draft = { ...d, dynamicsField: e.detail, value: null })}
      ></column-picker>
      ${(kind === "fixed_value" || kind === "engagement") && col
        ? this.renderValue(col, d.value, "draft-value", "", (v) => (this.draft = { ...d, value: v }))
        : nothing}
      ${this.renderMode(d.mode, "draft-mode", "Mode", (m) => (this.draft = { ...d, mode: m }))}
      <div class="actions">
        <button class="btn primary" ?disabled=${!this.draftReady(d)} @click=${this.addDraft}>Add</button>
        <button class="btn" @click=${() => {
          this.draft = null;
          void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(`#add-${kind}`)?.focus());
        }}>Cancel</button>
      </div>
    </div>`;
  }

  private crossingText(): string {
    return (
      "A company field in the Contacts tab can cause export errors. If the Companies tab maps the same " +
      "Dynamics column, map it the same way there."
    );
  }

  // ---- typed inputs ----

  /** The value input typed by the column: text, number, choice (its options), date, yes/no. */
  private renderValue(col: Column, value: unknown, id: string, problem: string, set: (v: unknown) => void) {
    const type: FieldType = valueTypeOf(col) ?? "text";
    const label = "Value";
    const described = problem ? `${id}-problem` : nothing;
    const err = problem ? html`<p class="error" id="${id}-problem" role="alert">${problem}</p>` : nothing;
    const str = (e: Event) => (e.target as HTMLInputElement).value;
    let control;
    switch (type) {
      case "integer":
      case "decimal":
        control = html`<input id=${id} type="number" step=${type === "integer" ? "1" : "any"} aria-describedby=${described}
          .value=${value === null || value === undefined ? "" : String(value)}
          @input=${(e: Event) => {
            const s = str(e);
            const n = type === "integer" ? Number.parseInt(s, 10) : Number.parseFloat(s);
            set(s === "" || Number.isNaN(n) ? null : n);
          }} />`;
        break;
      case "boolean":
        control = html`<select id=${id} aria-describedby=${described}
          @change=${(e: Event) => set(str(e) === "" ? null : str(e) === "true")}>
          <option value="" ?selected=${value === null || value === undefined}>Choose…</option>
          <option value="true" ?selected=${value === true}>Yes</option>
          <option value="false" ?selected=${value === false}>No</option>
        </select>`;
        break;
      case "datetime":
        control = html`<input id=${id} type="date" aria-describedby=${described}
          .value=${typeof value === "string" ? value.slice(0, 10) : ""}
          @input=${(e: Event) => set(str(e) ? `${str(e)}T00:00:00Z` : null)} />`;
        break;
      case "choice":
        control = html`<select id=${id} aria-describedby=${described} @change=${(e: Event) => set(str(e) || null)}>
          <option value="" ?selected=${!value}>Choose an option…</option>
          ${col.options.map((o) => html`<option value=${o.label} ?selected=${value === o.label}>${o.label}</option>`)}
        </select>`;
        break;
      case "choices": {
        const chosen = Array.isArray(value) ? (value as string[]) : [];
        control = html`<select id=${id} multiple size="4" aria-describedby=${described}
          @change=${(e: Event) => {
            const picked = [...(e.target as HTMLSelectElement).selectedOptions].map((o) => o.value);
            set(picked.length ? picked : null);
          }}>
          ${col.options.map((o) => html`<option value=${o.label} ?selected=${chosen.includes(o.label)}>${o.label}</option>`)}
        </select>`;
        break;
      }
      case "text_list":
        control = html`<input id=${id} type="text" aria-describedby=${described}
          .value=${Array.isArray(value) ? (value as string[]).join(", ") : ""}
          @input=${(e: Event) => {
            const items = str(e).split(",").map((s) => s.trim()).filter(Boolean);
            set(items.length ? items : null);
          }} />`;
        break;
      default: {
        const input = type === "email" ? "email" : type === "url" ? "url" : type === "phone" ? "tel" : "text";
        control = html`<input id=${id} type=${input} maxlength=${col.maxLength ?? nothing} aria-describedby=${described}
          .value=${typeof value === "string" ? value : ""} @input=${(e: Event) => set(str(e) === "" ? null : str(e))} />`;
      }
    }
    return html`<div class="field"><label for=${id}>${label} <span class="hint">(${type.replace("_", " ")})</span></label>${control}${err}</div>`;
  }

  private renderMode(mode: Mode, id: string, label: string, set: (m: Mode) => void) {
    const modes = this.catalog.modes.length
      ? this.catalog.modes
      : [
          { key: "overwrite", label: "Enginy overwrites Dynamics", description: "" },
          { key: "fill_if_empty", label: "Sync with Dynamics (only if empty)", description: "" },
        ];
    return html`<div class="field">
      <label for=${id}>${label}</label>
      <select id=${id} @change=${(e: Event) => set((e.target as HTMLSelectElement).value as Mode)}>
        ${modes.map((m) => html`<option value=${m.key} ?selected=${(mode ?? "overwrite") === m.key} title=${m.description}>${m.label}</option>`)}
      </select>
    </div>`;
  }

  // ---- saved mappings ----

  private describe(m: Mapping): string {
    const col = this.column(m.dynamicsField);
    const target = col?.displayName ? `${col.displayName} (${m.dynamicsField})` : m.dynamicsField;
    if (m.kind === "platform_field") return `${this.fieldLabel(m.platformField)} → ${target}`;
    if (m.kind === "manual_export") return `${target}, set at export`;
    return `${target} = ${Array.isArray(m.value) ? m.value.join(", ") : String(m.value)}`;
  }

  private renderRow(m: Mapping, index: number) {
    const at = `/fieldMapping/${this.tab}/${index}`;
    const name = this.describe(m);
    const id = `${this.tab}-${index}`;
    const { choices, loading } = this.choices(m.kind, m.kind === "platform_field" ? m.platformField : "");
    const col = this.column(m.dynamicsField);
    const prefix = this.catalog.platformFields.companyPrefix;
    const crossing = this.tab === "contacts" && m.kind === "platform_field" && m.platformField.startsWith(prefix);
    const rowProblems = [this.errorAt(at), this.errorAt(`${at}/platformField`), this.errorAt(`${at}/mode`)].filter(Boolean);
    const rowWarnings = [this.warningAt(at), this.warningAt(`${at}/platformField`), this.warningAt(`${at}/value`)].filter(Boolean);
    const columnWarning = this.warningAt(`${at}/dynamicsField`);
    return html`<li><div class="mapping" role="group" aria-label=${name} data-testid="mapping-${id}">
      <p class="what">${name}</p>
      <div class="controls">
        <column-picker
          label="Dynamics column"
          .value=${m.dynamicsField}
          .choices=${choices}
          ?loading=${loading}
          .problem=${this.errorAt(`${at}/dynamicsField`)}
          .note=${columnWarning}
          @column-change=${(e: CustomEvent<string>) => {
            const next = this.column(e.detail);
            const patch: Partial<Mapping> = { dynamicsField: e.detail };
            if (m.kind !== "platform_field") Object.assign(patch, { valueType: valueTypeOf(next) ?? "text" });
            if (m.kind === "fixed_value" || m.kind === "engagement") Object.assign(patch, { value: m.value ?? null });
            this.update_(index, patch);
          }}
        ></column-picker>
        ${(m.kind === "fixed_value" || m.kind === "engagement") && col
          ? this.renderValue(col, m.value, `${id}-value`, this.errorAt(`${at}/value`), (v) =>
              this.update_(index, { value: v } as Partial<Mapping>),
            )
          : (m.kind === "fixed_value" || m.kind === "engagement")
            ? html`<p class="field">Value: <code>${JSON.stringify(m.value)}</code></p>`
            : nothing}
        ${this.renderMode(m.mode ?? "overwrite", `${id}-mode`, "Mode", (mode) => this.update_(index, { mode }))}
        <button class="btn remove" aria-label="Remove ${name}" @click=${() => this.removeAt(index)}>Remove</button>
      </div>
      ${crossing && !rowWarnings.length ? html`<p class="warn"><span aria-hidden="true">⚠ </span>${this.crossingText()}</p>` : nothing}
      ${rowWarnings.map((w) => html`<p class="warn"><span aria-hidden="true">⚠ </span>Warning: ${w}</p>`)}
      ${rowProblems.map((p) => html`<p class="error" role="alert">${p}</p>`)}
    </div></li>`;
  }

  private renderKind(kind: Kind) {
    const option = this.kindLabel(kind);
    const rows = this.rows(this.tab)
      .map((m, index) => ({ m, index }))
      .filter(({ m }) => m.kind === kind);
    const oneOnly = kind === "engagement" && rows.length > 0;
    const headingId = `${this.tab}-${kind}-title`;
    return html`<section class="kind" aria-labelledby=${headingId}>
      <h4 id=${headingId}>${option.label}</h4>
      ${option.description ? html`<p class="hint">${option.description}</p>` : nothing}
      ${rows.length
        ? html`<ul class="mappings">${rows.map(({ m, index }) => this.renderRow(m, index))}</ul>`
        : html`<p class="hint">None yet.</p>`}
      ${this.renderDraft(kind)}
      ${this.draft?.kind === kind
        ? nothing
        : html`<button class="btn" id="add-${kind}" ?disabled=${oneOnly} aria-describedby=${oneOnly ? `${headingId}-one` : nothing}
              @click=${() => this.startDraft(kind)}>Add field</button>
            ${oneOnly ? html`<p class="hint" id="${headingId}-one">Only one engagement field can be set; remove it to choose another.</p>` : nothing}`}
    </section>`;
  }

  private onTabKey(e: KeyboardEvent): void {
    const i = TABS.findIndex((t) => t.key === this.tab);
    const next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : e.key === "Home" ? 0 : e.key === "End" ? TABS.length - 1 : null;
    if (next === null) return;
    e.preventDefault();
    this.selectTab(TABS[(next + TABS.length) % TABS.length].key, true);
  }

  private selectTab(tab: Tab, focus = false): void {
    this.tab = tab;
    this.draft = null;
    if (focus) void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(`#tab-${tab}`)?.focus());
  }

  render() {
    const tabProblems = (tab: Tab) => this.errorAt(`/fieldMapping/${tab}`);
    const count = (tab: Tab) =>
      new Set(this.errors.filter((p) => p.pointer.startsWith(`/fieldMapping/${tab}`)).map((p) => p.pointer + p.message)).size;
    
    return html`
      ${this.connection?.status === "disconnected" || !this.connection
        ? html`<p class="warn" role="status">Connect Dynamics in Step 1 to list its columns.</p>`
        : nothing}
      ${this.loadError ? html`<p class="error" role="alert">${this.loadError}</p>` : nothing}
      <div role="tablist" aria-label="Records to map" class="tabs">
        ${TABS.map(
          (t) => html`<button
            role="tab"
            id="tab-${t.key}"
            aria-selected=${this.tab === t.key ? "true" : "false"}
            aria-controls="panel-${t.key}"
            tabindex=${this.tab === t.key ? "0" : "-1"}
            @click=${() => this.selectTab(t.key)}
            @keydown=${this.onTabKey}
          >
            ${t.label}
            ${count(t.key) ? html`<span class="badge">${count(t.key)}<span class="visually-hidden"> problem(s)</span></span>` : nothing}
          </button>`,
        )}
      </div>
      <div role="tabpanel" id="panel-${this.tab}" aria-labelledby="tab-${this.tab}">
        ${tabProblems(this.tab) ? html`<p class="error" role="alert">${tabProblems(this.tab)}</p>` : nothing}
        ${KINDS.map((k) => this.renderKind(k))}
      </div>
    `;
  }

  static styles = [
    base,
    css`
      .tabs { display: flex; gap: 0.25rem; border-bottom: 1px solid var(--line); margin: 0.5rem 0 0.25rem; }
      [role="tab"] { border: 1px solid transparent; border-bottom: 0; background: none; color: var(--ink); padding: 0.45rem 1rem;
        border-radius: 6px 6px 0 0; cursor: pointer; min-height: 2.25rem; }
      [role="tab"][aria-selected="true"] { border-color: var(--line); background: var(--surface); color: var(--primary); font-weight: 600;
        box-shadow: inset 0 -3px 0 var(--primary); }
      .badge { display: inline-block; margin-left: 0.35rem; padding: 0 0.4rem; border-radius: 999px; background: var(--bad); color: #fff;
        font-size: 0.8rem; }
      h4 { margin: 0.9rem 0 0.1rem; font-size: 1rem; }
      .hint { color: var(--muted); margin: 0.1rem 0 0.4rem; font-size: 0.9rem; }
      .mappings { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.5rem; }
      .mapping, .draft { border: 1px solid var(--line); border-radius: 8px; padding: 0.5rem 0.75rem; }
      .draft { border-style: dashed; display: grid; gap: 0.5rem; margin: 0.4rem 0; }
      .what { margin: 0 0 0.35rem; font-weight: 600; overflow-wrap: anywhere; }
      .controls { display: grid; grid-template-columns: minmax(12rem, 2fr) minmax(9rem, 1.3fr) minmax(10rem, 1.3fr) auto; gap: 0.5rem;
        align-items: start; }
      @media (max-width: 720px) { .controls { grid-template-columns: 1fr; } }
      .field { display: grid; gap: 0.15rem; margin: 0; font-size: 0.9rem; align-content: start; }
      select, input { padding: 0.4rem; border: 1px solid #6b6b75; border-radius: 6px; width: 100%; min-width: 0; background: var(--surface);
        color: var(--ink); }
      .remove { align-self: end; justify-self: start; border-color: var(--bad); color: var(--bad); }
      .actions { display: flex; gap: 0.5rem; }
      .warn { color: var(--warn); margin: 0.3rem 0 0; font-size: 0.9rem; }
      .error { margin: 0.3rem 0 0; font-size: 0.9rem; }
      code { overflow-wrap: anywhere; }
    `,
  ];
}

customElements.define("step2-fields", Step2Fields);
