// <dynamics-integration-settings>: the whole Dynamics settings experience as one element a host page
// drops in. The host gives it `tokenProvider` (a function answering the platform caller token) and, when
// the API is not on the page's own origin, `apiBase`; and `role` ("admin" or "member", the signed-in
// user's role in the workspace: a member sees the integrations and exports, without the controls only
// admins may use; the API refuses those to members whatever the page shows). Without a token provider it
// shows how to sign in.
import { LitElement, css, html, nothing } from "lit";
import { createApi, problemText, tokenWorkspace, type Api, type Schemas, type TokenProvider } from "./api/client";
import type { IntegrationsPage } from "./pages/integrations-page";
import "./pages/integrations-page";
import "./pages/exports-page";
import type { SetupWindow } from "./setup-window";
import "./setup-window";
import type { NotificationBell } from "./ui/notification-bell";
import "./ui/notification-bell";
import { base } from "./ui/styles";

export class DynamicsIntegrationSettings extends LitElement {
  static properties = {
    tokenProvider: { attribute: false },
    apiBase: { type: String, attribute: "api-base" },
    signInUrl: { type: String, attribute: "sign-in-url" },
    signedInAs: { type: String, attribute: "signed-in-as" },
    role: { type: String },
    connected: { state: true },
    oauthError: { state: true },
    view: { state: true },
  };

  declare connected: Schemas["ConnectedAccount"] | null;
  declare oauthError: string;
  /** The section shown: the integrations (#integrations, the default) or the exports (#exports). */
  declare view: "integrations" | "exports";

  declare tokenProvider: TokenProvider | undefined;
  declare apiBase: string;
  declare signInUrl: string;
  declare signedInAs: string;
  declare role: "admin" | "member";
  private api: Api | null = null;
  private workspace: Promise<string> | undefined;
  private apiFor: [string, TokenProvider | undefined] | null = null;

  constructor() {
    super();
    this.apiBase = "";
    this.signInUrl = "";
    this.signedInAs = "";
    this.role = "admin";
    this.connected = null;
    this.oauthError = "";
    this.view = viewOf(location.hash);
  }

  private readonly onHash = (): void => {
    this.view = viewOf(location.hash);
  };

  connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("hashchange", this.onHash);
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener("hashchange", this.onHash);
  }

  protected firstUpdated(): void {
    void this.completeSignIn();
  }

  /** Back from Microsoft's sign-in (FRONTEND_URL?dynamics=confirm&handle=...): complete it, confirm. */
  private async completeSignIn(): Promise<void> {
    const url = new URL(location.href);
    const outcome = url.searchParams.get("dynamics");
    const handle = url.searchParams.get("handle");
    const code = url.searchParams.get("code");
    if (!outcome) return;
    for (const name of ["dynamics", "handle", "code"]) url.searchParams.delete(name);
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    const api = this.client();
    if (!api) return;
    if (outcome !== "confirm" || !handle) {
      this.oauthError = `Microsoft sign-in did not complete (${code ?? "unknown error"}). Nothing was connected.`;
      return;
    }
    const { data, error, response } = await api.POST("/api/dynamics/oauth/complete", { body: { handle } });
    if (!data) {
      this.oauthError = problemText(error, response);
      return;
    }
    this.connected = data;
    this.refresh();
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLDialogElement>("#connected")?.showModal();
  }

  private refresh(): void {
    void this.renderRoot.querySelector<IntegrationsPage>("integrations-page")?.reload();
    void this.renderRoot.querySelector<NotificationBell>("notification-bell")?.reload();
  }

  private get setupWindow(): SetupWindow | null {
    return this.renderRoot.querySelector<SetupWindow>("setup-window");
  }

  private async startSignIn(event: CustomEvent<string>): Promise<void> {
    await this.setupWindow?.keepDraft();
    location.assign(event.detail);
  }

  private client(): Api | null {
    if (!this.tokenProvider) return null;
    if (!this.api || !this.apiFor || this.apiFor[0] !== this.apiBase || this.apiFor[1] !== this.tokenProvider) {
      const tokenProvider = this.tokenProvider;
      this.api = createApi(this.apiBase, tokenProvider);
      this.apiFor = [this.apiBase, tokenProvider];
      this.workspace = Promise.resolve()
        .then(() => tokenProvider())
        .then(tokenWorkspace, () => "");
    }
    return this.api;
  }

  render() {
    const api = this.client();
    return html`
      <header>
        <h1>Integrations</h1>
        <div class="tools">
          ${this.signedInAs ? html`<p class="who">Signed in as ${this.signedInAs}</p>` : nothing}
          ${api ? html`<notification-bell
                .api=${api}
                .canReconnect=${this.role === "admin"}
                @dynamics-connect=${this.startSignIn}
              ></notification-bell>` : nothing}
        </div>
      </header>
      ${api
        ? html`<nav aria-label="Sections">
            <a href="#integrations" aria-current=${this.view === "integrations" ? "page" : "false"}>Integrations</a>
            <a href="#exports" aria-current=${this.view === "exports" ? "page" : "false"}>Exports</a>
          </nav>`
        : nothing}
      <main>
        ${this.oauthError ? html`<p role="alert" class="error">${this.oauthError}</p>` : nothing}
        ${api && this.view === "exports" ? html`<exports-page .api=${api}></exports-page>` : nothing}
        ${api && this.view === "integrations"
          ? html`<h2 class="visually-hidden">CRM integrations</h2>
              <integrations-page
                .api=${api}
                .readOnly=${this.role !== "admin"}
                @configure=${() => this.setupWindow?.show()}
              ></integrations-page>`
          : nothing}
        ${api ? this.renderSetup(api) : nothing}
        ${api
          ? nothing
          : html`<p role="status">
              You are not signed in.
              ${this.signInUrl ? html`<a href=${this.signInUrl}>Sign in for local development</a>` : nothing}
            </p>`}
      </main>
    `;
  }

  // Mounted whatever the view: the window is modal, and Back / Forward to #exports must not drop its
  // unsaved edits (nor the sign-in's confirmation).
  private renderSetup(api: Api) {
    return html`<setup-window
        .api=${api}
        .workspace=${this.workspace}
        @dynamics-connect=${this.startSignIn}
        @config-saved=${this.refresh}
        @setup-closed=${this.refresh}
      ></setup-window>
      ${this.renderConnected()}`;
  }

  private renderConnected() {
    const c = this.connected;
    return html`<dialog id="connected" aria-labelledby="connected-title">
      <h2 id="connected-title">Dynamics 365 connected</h2>
      ${c
        ? html`<dl>
            <dt>Microsoft account</dt><dd data-testid="connected-account">${c.signedInAs ?? "unknown"}</dd>
            <dt>Tenant</dt><dd data-testid="connected-tenant">${c.tenantId ?? "unknown"}</dd>
            <dt>Environment</dt><dd data-testid="connected-environment">${c.environmentUrl}</dd>
          </dl>`
        : nothing}
      <button
        class="btn primary"
        @click=${() => {
          this.renderRoot.querySelector<HTMLDialogElement>("#connected")?.close();
          void this.setupWindow?.show();
        }}
      >
        Continue the setup
      </button>
    </dialog>`;
  }

  static styles = [
    base,
    css`
      :host { display: block; background: var(--canvas); min-height: 100%; }
      header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
        gap: 0.5rem 1rem; padding: 1rem 1.25rem; background: var(--surface); border-bottom: 1px solid var(--line); }
      h1 { margin: 0; font-size: 1.4rem; }
      .who { margin: 0; color: var(--muted); }
      .tools { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; }
      #connected { border: 1px solid var(--line); border-radius: 12px; padding: 1rem 1.25rem; color: var(--ink);
        width: min(30rem, calc(100vw - 1rem)); }
      #connected h2 { margin-top: 0; font-size: 1.15rem; }
      dl { display: grid; grid-template-columns: auto 1fr; gap: 0.3rem 0.75rem; }
      dt { color: var(--muted); }
      dd { margin: 0; overflow-wrap: anywhere; }
      nav { display: flex; gap: 0.25rem; padding: 0 1.25rem; background: var(--surface);
        border-bottom: 1px solid var(--line); }
      nav a { padding: 0.6rem 0.9rem; color: var(--muted); text-decoration: none; border-bottom: 3px solid transparent; }
      nav a[aria-current="page"] { color: var(--primary); border-bottom-color: var(--primary); font-weight: 600; }
      main { padding: 1.25rem; max-width: 72rem; margin: 0 auto; }
      a { color: var(--primary); }
    `,
  ];
}

function viewOf(hash: string): "integrations" | "exports" {
  return hash === "#exports" ? "exports" : "integrations";
}

customElements.define("dynamics-integration-settings", DynamicsIntegrationSettings);

declare global {
  interface HTMLElementTagNameMap {
    "dynamics-integration-settings": DynamicsIntegrationSettings;
  }
}
