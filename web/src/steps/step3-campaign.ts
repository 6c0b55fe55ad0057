// Step 3, Campaign mapping: the thirteen campaign properties in the catalog's four sections (what each
// contains and an example of its value), each mapped to a column of the Dynamics contact table, which is
// where the activity writer puts them (core/services/config/metadata_check.py checks the same table).
// Every column offered carries the icon the server gives for that property (GET /api/dynamics/fields/icons,
// targets "campaign:<property>") in the same column dropdown as Step 2 (column-picker.ts): a shape and a
// word, never colour alone, with its reason on hover and focus; a red column cannot be chosen.
import { css, html, nothing } from "lit";
import type { Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";
import type { ColumnChoice, Level } from "./column-picker";
import "./column-picker";
import {
  copy,
  emitChange,
  problemAt,
  StepElement,
  stepProperties,
} from "./contract";

type Mapping = Schemas["CampaignMapping"];
type Key = keyof Mapping;
type Matrix = Schemas["IconMatrixPage"];

const ORDER: Record<Level, number> = { ok: 0, warning: 1, error: 2 };
const P = "/campaignMapping";

/** The columns of the contact table with the icon of one campaign property on each, best first. */
export function campaignChoices(matrix: Matrix, property: string): ColumnChoice[] {
  const t = matrix.targets.findIndex((target) => target.key === `campaign:${property}`);
  if (t < 0) return [];
  return matrix.columns
    .map((column, c) => {
      const outcome = matrix.outcomes[matrix.cells[c][t]];
      return {
        value: column.logicalName,
        label: `${column.displayName || column.logicalName} (${column.logicalName})`,
        level: outcome.level as Level,
        reason: outcome.reasons.map((r) => matrix.reasons[r]).join("; "),
      };
    })
    .sort((a, b) => ORDER[a.level] - ORDER[b.level] || a.label.localeCompare(b.label));
}

export class Step3Campaign extends StepElement {
  static properties = {
    ...stepProperties,
    matrix: { state: true },
    loadError: { state: true },
  };

  declare matrix: Matrix | null;
  declare loadError: string;
  private loading = false;

  constructor() {
    super();
    this.problems = [];
    this.connection = null;
    this.matrix = null;
    this.loadError = "";
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    if (this.loading || this.matrix || !this.api) return;
    this.loading = true;
    const { data, error, response } = await this.api.GET("/api/dynamics/fields/icons", {
      params: { query: { entity: "contact" } },
    });
    this.loading = false;
    if (data) this.matrix = data;
    else this.loadError = problemText(error, response);
  }

  private get mapping(): Mapping {
    return (this.config.campaignMapping ?? {}) as Mapping;
  }

  private set(key: Key, column: string): void {
    emitChange(this, "campaignMapping", { ...copy(this.mapping), [key]: column || null });
  }

  private renderProperty(p: Schemas["CampaignPropertyEntry"]) {
    const key = p.key as Key;
    const chosen = (this.mapping[key] as string | null | undefined) ?? "";
    const choices = this.matrix ? campaignChoices(this.matrix, p.key) : [];
    const id = `prop-${p.key}`;
    return html`<div class="property" data-testid=${id}>
      <p class="name">${p.label}</p>
      <p class="hint">${p.contains} <span class="example">Example: <code>${p.example}</code></span></p>
      <div class="pick">
        <column-picker
          label="Dynamics column for ${p.label}"
          .value=${chosen}
          .choices=${choices}
          ?loading=${!this.matrix && !this.loadError}
          .problem=${problemAt(this.problems, `${P}/${p.key}`)}
          @column-change=${(e: CustomEvent<string>) => this.set(key, e.detail)}
        ></column-picker>
        ${chosen
          ? html`<button class="btn" type="button" @click=${() => this.set(key, "")}>Unmap ${p.label}</button>`
          : nothing}
      </div>
    </div>`;
  }

  render() {
    return html`
      <p class="hint">Optional. Campaign properties are not list fields: they describe the contact's campaign
        activity and are written to the contact's columns in Dynamics. Each option shows whether the column can
        take the property: ✓ compatible, ! review, ✕ cannot be applied (those cannot be chosen). Type to search.</p>
      ${this.loadError
        ? html`<p class="error" role="alert">The Dynamics columns could not be listed: ${this.loadError}</p>`
        : !this.matrix
          ? html`<p role="status">Loading the Dynamics columns…</p>`
          : nothing}
      ${this.catalog.campaignSections.map(
        (s) => html`<fieldset>
          <legend>${s.label}</legend>
          ${s.properties.map((p) => this.renderProperty(p))}
        </fieldset>`,
      )}
    `;
  }

  static styles = [
    base,
    css`
      fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 0.75rem 0; padding: 0.5rem 0.75rem; min-width: 0; }
      legend { font-weight: 600; padding: 0 0.25rem; }
      .hint { color: var(--muted); margin: 0.1rem 0 0.4rem; font-size: 0.9rem; }
      .property { margin: 0.6rem 0; }
      .name { font-weight: 600; }
      code { overflow-wrap: anywhere; }
      .example { display: block; }
      .name { margin: 0; }
      .pick { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: end; }
      column-picker { flex: 1 1 14rem; }
    `,
  ];
}

customElements.define("step3-campaign", Step3Campaign);
