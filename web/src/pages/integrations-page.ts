// The Integrations page: All / Enabled / Disabled tabs and one card per CRM with its toggle. Only one CRM
// may be active: enabling a second one shows the API's 409 message ("... disable it first") on that card.
// The Dynamics card says whether the connection works, needs a reconnect, and whether it is configured,
// and its Configure button opens the setup window (the `configure` event).
import { LitElement, css, html, nothing } from "lit";
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";

type Card = Schemas["IntegrationCardModel"];
type Tab = "all" | "enabled" | "disabled";
const TABS: { id: Tab; label: string }[] = [
  { id: "all", label: "All" },
  { id: "enabled", label: "Enabled" },
  { id: "disabled", label: "Disabled" },
];

export const RECONNECT_REASONS: Record<string, string> = {
  inactivity: "Microsoft ended the sign-in after a long period without use (90 days or more).",
  revoked: "The sign-in was revoked, for example after a password change or reset.",
  consent_or_mfa_required: "Microsoft now requires consent or multi-factor authentication again.",
};

export function reconnectReasonText(reason: string | null | undefined): string {
  return (reason && RECONNECT_REASONS[reason]) || "Microsoft no longer accepts the sign-in.";
}

export class IntegrationsPage extends LitElement {
  static properties = {
    api: { attribute: false },
    readOnly: { type: Boolean, attribute: "read-only" },
    cards: { state: true },
    tab: { state: true },
    loadError: { state: true },
    cardErrors: { state: true },
    busy: { state: true },
  };

  declare api: Api;
  declare readOnly: boolean;
  declare cards: Card[] | null;
  declare tab: Tab;
  declare loadError: string;
  declare cardErrors: Record<string, string>;
  declare busy: string;

  constructor() {
    super();
    this.readOnly = false;
    this.cards = null;
    this.tab = "all";
    this.loadError = "";
    this.cardErrors = {};
    this.busy = "";
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.reload();
  }

  async reload(): Promise<void> {
    const { data, error, response } = await this.api.GET("/api/integrations");
    if (data) {
      this.cards = data.integrations;
      this.loadError = "";
    } else {
      this.loadError = problemText(error, response);
    }
  }

  private async toggle(card: Card, enabled: boolean): Promise<void> {
    this.busy = card.crm;
    this.cardErrors = { ...this.cardErrors, [card.crm]: "" };
    const { data, error, response } = await this.api.PUT("/api/integrations/{crm}", {
      params: { path: { crm: card.crm as "dynamics" } },
      body: { enabled },
    });
    this.busy = "";
    if (data) {
      // The answer is the toggled card alone; the Dynamics card's connection and setup come with the list.
      this.cards = (this.cards ?? []).map((c) => (c.crm === data.crm ? { ...c, enabled: data.enabled } : c));
      await this.reload();
      this.dispatchEvent(new CustomEvent("integrations-changed", { bubbles: true, composed: true }));
    } else {
      this.cardErrors = { ...this.cardErrors, [card.crm]: problemText(error, response) };
      this.requestUpdate();
      await this.updateComplete;
      const input = this.renderRoot.querySelector<HTMLInputElement>(`#toggle-${card.crm}`);
      if (input) input.checked = card.enabled; // the switch shows what is really saved
    }
  }

  private onTabKey(event: KeyboardEvent): void {
    const index = TABS.findIndex((t) => t.id === this.tab);
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: TABS.length - 1 - index };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = TABS[(index + moves[event.key] + TABS.length) % TABS.length];
    this.tab = next.id;
    void this.updateComplete.then(() =>
      this.renderRoot.querySelector<HTMLButtonElement>(`#tab-${next.id}`)?.focus(),
    );
  }

  private visible(): Card[] {
    const cards = this.cards ?? [];
    if (this.tab === "enabled") return cards.filter((c) => c.enabled);
    if (this.tab === "disabled") return cards.filter((c) => !c.enabled);
    return cards;
  }

  render() {
    return html`
      <div role="tablist" aria-label="Integrations" @keydown=${this.onTabKey}>
        ${TABS.map(
          (t) => html`<button
            role="tab"
            id="tab-${t.id}"
            aria-selected=${this.tab === t.id ? "true" : "false"}
            aria-controls="cards"
            tabindex=${this.tab === t.id ? 0 : -1}
            @click=${() => (this.tab = t.id)}
          >
            ${t.label}
          </button>`,
        )}
      </div>
      <div id="cards" role="tabpanel" aria-labelledby="tab-${this.tab}" tabindex="0">
        ${this.loadError ? html`<p role="alert" class="error">${this.loadError}</p>` : nothing}
        ${this.cards === null && !this.loadError ? html`<p aria-live="polite">Loading integrations…</p>` : nothing}
        ${this.cards !== null && this.visible().length === 0
          ? html`<p>No ${this.tab} integrations.</p>`
          : nothing}
        <ul class="cards">
          ${this.visible().map((card) => this.renderCard(card))}
        </ul>
      </div>
    `;
  }

  private renderCard(card: Card) {
    const error = this.cardErrors[card.crm];
    return html`<li class="card" data-crm=${card.crm}>
      <div class="card-head">
        <h3 id="name-${card.crm}">${card.name}</h3>
        <label class="switch">
          <input
            type="checkbox"
            role="switch"
            id="toggle-${card.crm}"
            .checked=${card.enabled}
            ?disabled=${this.readOnly || this.busy === card.crm}
            aria-describedby=${error ? `error-${card.crm}` : this.readOnly && card.dynamics ? `admins-only-${card.crm}` : nothing}
            @change=${(e: Event) => this.toggle(card, (e.target as HTMLInputElement).checked)}
          />
          <span>${card.enabled ? "Enabled" : "Disabled"}</span>
          <span class="visually-hidden">: ${card.name}</span>
        </label>
      </div>
      ${card.dynamics ? this.renderDynamics(card, card.dynamics) : nothing}
      ${error ? html`<p role="alert" class="error" id="error-${card.crm}">${error}</p>` : nothing}
    </li>`;
  }

  private renderDynamics(card: Card, dynamics: Schemas["DynamicsCardModel"]) {
    const connection = dynamics.connection;
    const status =
      connection.status === "connected"
        ? html`<span class="badge ok">Connected</span>
            ${connection.integrationUserEmail ? html` as ${connection.integrationUserEmail}` : nothing}`
        : connection.status === "reconnect_required"
          ? html`<span class="badge bad">Needs reconnect</span> ${reconnectReasonText(connection.reconnectReason)}`
          : html`<span class="badge">Not connected</span>`;
    const configured = dynamics.configured
      ? html`<span class="badge ok">Configured</span> version ${dynamics.configured.version}, saved
          ${new Date(dynamics.configured.savedAt).toLocaleString()}`
      : html`<span class="badge">Not configured</span>`;
    return html`<dl class="facts">
        <div><dt>Connection</dt><dd data-testid="dynamics-connection">${status}</dd></div>
        <div><dt>Setup</dt><dd data-testid="dynamics-configured">${configured}</dd></div>
      </dl>
      ${this.readOnly
        ? html`<p class="hint" id="admins-only-${card.crm}">
            Only workspace admins can turn integrations on or off and change their setup.
          </p>`
        : html`<button
              class="btn primary"
              ?disabled=${!card.enabled}
              aria-describedby="name-${card.crm}"
              @click=${() =>
                this.dispatchEvent(
                  new CustomEvent("configure", { detail: { crm: card.crm }, bubbles: true, composed: true }),
                )}
            >
              Configure
            </button>
            ${card.enabled ? nothing : html`<p class="hint">Enable the integration to configure it.</p>`}`}`;
  }

  static styles = [
    base,
    css`
      [role="tablist"] { display: flex; gap: 0.25rem; border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
      [role="tab"] {
        border: 0; background: none; padding: 0.5rem 0.9rem; color: var(--muted); cursor: pointer;
        border-bottom: 3px solid transparent;
      }
      [role="tab"][aria-selected="true"] { color: var(--primary); border-bottom-color: var(--primary); font-weight: 600; }
      .cards { list-style: none; padding: 0; margin: 0; display: grid; gap: 1rem;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 18rem), 1fr)); }
      .card { background: var(--surface); border: 1px solid var(--line); border-radius: 10px; padding: 1rem; }
      .card-head { display: flex; justify-content: space-between; align-items: center; gap: 0.5rem; }
      h3 { margin: 0; font-size: 1.05rem; }
      .switch { display: inline-flex; align-items: center; gap: 0.4rem; cursor: pointer; }
      .switch input { width: 1.2rem; height: 1.2rem; accent-color: var(--primary); }
      .facts { margin: 0.75rem 0; display: grid; gap: 0.35rem; }
      .facts div { display: grid; grid-template-columns: 6.5rem minmax(0, 1fr); gap: 0.5rem; }
      dt { color: var(--muted); }
      dd { margin: 0; overflow-wrap: anywhere; }
      .badge { display: inline-block; border: 1px solid var(--line); border-radius: 999px; padding: 0 0.5rem;
        font-size: 0.85rem; color: var(--muted); }
      .badge.ok { border-color: var(--ok); color: var(--ok); }
      .badge.bad { border-color: var(--bad); color: var(--bad); }
      .hint { color: var(--muted); font-size: 0.9rem; margin: 0.5rem 0 0; }
    `,
  ];
}

customElements.define("integrations-page", IntegrationsPage);
