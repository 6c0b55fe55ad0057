// Step 1, Sync configuration: the integration user (connect / reconnect through Microsoft sign-in), how
// contacts and companies are recognised in Dynamics (the catalog's options with their explanations, a
// custom AND/OR rule in a pop-up, the domain's "any extension"), and the two General toggles.
import { css, html, nothing } from "lit";
import type { Schemas } from "../api/client";
import { problemText } from "../api/client";
import { reconnectReasonText } from "../pages/integrations-page";
import { base } from "../ui/styles";
import {
  copy,
  emitChange,
  problemAt,
  problemsUnder,
  StepElement,
  stepProperties,
} from "./contract";
import { RuleBuilder, type Choice } from "./rule-builder";
import "./rule-builder";

type Sync = Schemas["SyncIdentifiers"];
type Side = "contact" | "company";
const P = "/syncIdentifiers";

export class Step1Sync extends StepElement {
  static properties = {
    ...stepProperties,
    environmentUrl: { state: true },
    connectError: { state: true },
    connecting: { state: true },
    columns: { state: true },
    columnsError: { state: true },
    editing: { state: true },
  };

  declare environmentUrl: string;
  declare connectError: string;
  declare connecting: boolean;
  declare columns: Record<Side, Choice[]>;
  declare columnsError: Record<Side, string>;
  declare editing: Side | null;

  constructor() {
    super();
    this.problems = [];
    this.connection = null;
    this.environmentUrl = "";
    this.connectError = "";
    this.connecting = false;
    this.columns = { contact: [], company: [] };
    this.columnsError = { contact: "", company: "" };
    this.editing = null;
  }

  private get sync(): Sync {
    return this.config.syncIdentifiers as Sync;
  }

  private set(patch: Partial<Sync>): void {
    emitChange(this, "syncIdentifiers", { ...copy(this.sync), ...patch });
  }

  willUpdate(changed: Map<string, unknown>): void {
    if (changed.has("connection") && !this.environmentUrl) this.environmentUrl = this.connection?.environmentUrl ?? "";
  }

  private async connect(): Promise<void> {
    this.connectError = "";
    this.connecting = true;
    const { data, error, response } = await this.api.POST("/api/dynamics/connect", {
      body: { environmentUrl: this.environmentUrl.trim() },
    });
    this.connecting = false;
    if (!data) {
      this.connectError = problemText(error, response);
      return;
    }
    // The window keeps this tab's unsaved edits, then the page goes to Microsoft's sign-in; it comes back
    // to this page with ?dynamics=confirm&handle=... and the page completes the connection.
    this.dispatchEvent(new CustomEvent("dynamics-connect", { detail: data.authorizationUrl, bubbles: true, composed: true }));
  }

  private async openRule(side: Side): Promise<void> {
    if (!(await this.loadColumns(side))) return; // no columns to pick from: the reason shows instead
    this.editing = side;
    await this.updateComplete;
    await this.renderRoot.querySelector<RuleBuilder>("rule-builder")?.open();
  }

  /** The side's Dynamics columns for the rule pop-up; false (and the reason shown) when they failed. */
  private async loadColumns(side: Side): Promise<boolean> {
    if (this.columns[side].length) return true;
    const { data, error, response } = await this.api.GET("/api/dynamics/fields", {
      params: { query: { entity: side === "contact" ? "contact" : "account" } },
    });
    this.columnsError = { ...this.columnsError, [side]: data ? "" : problemText(error, response) };
    if (!data) return false;
    const choices = data.columns
      .map((c) => ({ value: c.logicalName, label: `${c.displayName || c.logicalName} (${c.logicalName})` }))
      .sort((a, b) => a.label.localeCompare(b.label));
    this.columns = { ...this.columns, [side]: choices };
    return true;
  }

  private platformChoices(side: Side): Choice[] {
    const fields = this.catalog.platformFields;
    const own = side === "contact" ? fields.contact : fields.company;
    return own.map((f) => ({ value: f.key, label: f.label }));
  }

  private ruleText(rule: Schemas["Rule"] | null | undefined): string {
    if (!rule) return "no rule yet";
    const part = (item: Schemas["Rule"] | Schemas["Condition"]): string =>
      "operator" in item
        ? `(${item.conditions.map(part).join(` ${item.operator.toUpperCase()} `)})`
        : `${item.platformField} = ${item.dynamicsField}`;
    return part(rule);
  }

  private renderConnection() {
    const c = this.connection;
    const email = c?.integrationUser?.email ?? this.sync.integrationUser?.email ?? null;
    const status = c?.status ?? "disconnected";
    return html`<section aria-labelledby="user-title">
      <h4 id="user-title">Integration user</h4>
      <p data-testid="integration-user">
        ${email
          ? html`Dynamics is reached as <strong>${email}</strong>${c?.environmentUrl ? html` on ${c.environmentUrl}` : nothing}.`
          : html`Not connected yet: sign in with the Microsoft account the integration should use.`}
      </p>
      ${status === "reconnect_required"
        ? html`<p class="error" role="alert">Reconnect needed: ${reconnectReasonText(c?.reason)}</p>`
        : nothing}
      <p class="hint">Sign-in uses OAuth 2.0 with Microsoft; only encrypted tokens are kept, and they refresh by
        themselves.</p>
      <div class="row">
        <label class="grow">
          Dynamics environment URL
          <input
            type="url"
            placeholder="https://contoso.crm4.dynamics.com"
            .value=${this.environmentUrl}
            aria-describedby=${this.connectError ? "connect-error" : nothing}
            @input=${(e: Event) => (this.environmentUrl = (e.target as HTMLInputElement).value)}
          />
        </label>
        <button class="btn primary" ?disabled=${this.connecting || !this.environmentUrl.trim()} @click=${this.connect}>
          ${status === "disconnected" ? "Connect" : "Reconnect"}
        </button>
      </div>
      ${this.connectError ? html`<p class="error" id="connect-error" role="alert">${this.connectError}</p>` : nothing}
    </section>`;
  }

  private renderChoice(side: Side) {
    const contact = side === "contact";
    const options = contact ? this.catalog.contactIdentifiers : this.catalog.companyIdentifiers;
    const key = contact ? "contactIdentifier" : "companyIdentifier";
    const ruleKey = contact ? "contactRule" : "companyRule";
    const chosen = this.sync[key];
    const title = contact ? "Contact identifier" : "Company identifier";
    const error = problemAt(this.problems, `${P}/${key}`);
    const ruleProblems = problemsUnder(this.problems, `${P}/${ruleKey}`);
    return html`<fieldset aria-describedby=${error ? `${key}-error` : nothing}>
      <legend>${title}</legend>
      <p class="hint">How the integration decides that a ${contact ? "contact" : "company"} already exists in Dynamics.</p>
      ${options.map(
        (o) => html`<div class="option">
          <input
            type="radio"
            name=${key}
            id="${key}-${o.key}"
            .checked=${chosen === o.key}
            aria-describedby="${key}-${o.key}-text"
            @change=${() => {
              this.set({ [key]: o.key } as Partial<Sync>);
              if (o.key === "custom" && !this.sync[ruleKey]) void this.openRule(side);
            }}
          />
          <label for="${key}-${o.key}">${o.label}</label>
          <p class="hint" id="${key}-${o.key}-text">${o.description}</p>
        </div>`,
      )}
      ${chosen === "custom"
        ? html`<div class="rule">
            <p>Custom rule: <code data-testid="${ruleKey}">${this.ruleText(this.sync[ruleKey])}</code></p>
            <button class="btn" @click=${() => this.openRule(side)}>Edit the custom ${side} rule</button>
            ${ruleProblems.map((p) => html`<p class="error" role="alert">${p.message}</p>`)}
          </div>`
        : nothing}
      ${this.columnsError[side]
        ? html`<p class="error" role="alert">The Dynamics columns could not be loaded: ${this.columnsError[side]}</p>`
        : nothing}
      ${!contact && chosen !== "custom"
        ? html`<label class="check">
            <input
              type="checkbox"
              .checked=${this.sync.companyDomainAnyExtension ?? false}
              @change=${(e: Event) => this.set({ companyDomainAnyExtension: (e.target as HTMLInputElement).checked })}
            />
            Any extension: contoso.com also matches contoso.co.uk or contoso.de
          </label>`
        : nothing}
      ${error ? html`<p class="error" id="${key}-error" role="alert">${error}</p>` : nothing}
    </fieldset>`;
  }

  private renderGeneral() {
    const toggle = (key: "associateContactsWithCompanies" | "associateCompaniesWithContacts", text: string, help: string) => html`<div class="option">
      <label class="check">
        <input
          type="checkbox"
          role="switch"
          .checked=${this.sync[key] ?? false}
          aria-describedby="${key}-help"
          @change=${(e: Event) => this.set({ [key]: (e.target as HTMLInputElement).checked } as Partial<Sync>)}
        />
        ${text}
      </label>
      <p class="hint" id="${key}-help">${help}</p>
      ${problemAt(this.problems, `${P}/${key}`) ? html`<p class="error" role="alert">${problemAt(this.problems, `${P}/${key}`)}</p>` : nothing}
    </div>`;
    return html`<fieldset>
      <legend>General</legend>
      ${toggle(
        "associateContactsWithCompanies",
        "When exporting contacts, associate them with companies in Dynamics",
        "Exported contacts are linked to their companies in Dynamics.",
      )}
      ${toggle(
        "associateCompaniesWithContacts",
        "When exporting companies, associate them with contacts in Dynamics",
        "Exported companies are linked to their related contacts in Dynamics.",
      )}
    </fieldset>`;
  }

  render() {
    const side = this.editing;
    return html`
      ${this.renderConnection()} ${this.renderChoice("contact")} ${this.renderChoice("company")} ${this.renderGeneral()}
      <rule-builder
        heading=${side === "company" ? "Custom company mapping" : "Custom contact mapping"}
        .rule=${side ? this.sync[side === "contact" ? "contactRule" : "companyRule"] ?? null : null}
        .platformFields=${side ? this.platformChoices(side) : []}
        .columns=${side ? this.columns[side] : []}
        @rule-save=${(e: CustomEvent<Schemas["Rule"]>) => {
          this.set(side === "company" ? { companyRule: e.detail } : { contactRule: e.detail });
          this.editing = null;
        }}
        @rule-cancel=${() => (this.editing = null)}
      ></rule-builder>
    `;
  }

  static styles = [
    base,
    css`
      h4 { margin: 0.75rem 0 0.25rem; font-size: 1rem; }
      fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 0.75rem 0; padding: 0.5rem 0.75rem; }
      legend { font-weight: 600; padding: 0 0.25rem; }
      .hint { color: var(--muted); margin: 0.1rem 0 0.4rem; font-size: 0.9rem; }
      .option { margin: 0.4rem 0; }
      .option .hint { margin-left: 1.6rem; }
      .row { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: end; }
      .grow { flex: 1 1 16rem; display: grid; gap: 0.2rem; }
      input[type="url"] { padding: 0.4rem; border: 1px solid #6b6b75; border-radius: 6px; width: 100%; }
      input[type="radio"], input[type="checkbox"] { width: 1.1rem; height: 1.1rem; accent-color: var(--primary); margin-right: 0.4rem; }
      .check { display: flex; align-items: center; }
      .rule { margin: 0.5rem 0 0.25rem; }
      code { overflow-wrap: anywhere; }
    `,
  ];
}

customElements.define("step1-sync", Step1Sync);
