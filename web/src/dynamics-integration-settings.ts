// <dynamics-integration-settings>: the whole Dynamics settings experience as one element a host page
// drops in. The host gives it `tokenProvider` (a function answering the platform caller token) and, when
// the API is not on the page's own origin, `apiBase`. Without a token provider it shows how to sign in.
import { LitElement, css, html, nothing } from "lit";
import { createApi, type Api, type TokenProvider } from "./api/client";
import "./pages/integrations-page";
import { base } from "./ui/styles";

export class DynamicsIntegrationSettings extends LitElement {
  static properties = {
    tokenProvider: { attribute: false },
    apiBase: { type: String, attribute: "api-base" },
    signInUrl: { type: String, attribute: "sign-in-url" },
    signedInAs: { type: String, attribute: "signed-in-as" },
  };

  declare tokenProvider: TokenProvider | undefined;
  declare apiBase: string;
  declare signInUrl: string;
  declare signedInAs: string;
  private api: Api | null = null;
  private apiFor: [string, TokenProvider | undefined] | null = null;

  constructor() {
    super();
    this.apiBase = "";
    this.signInUrl = "";
    this.signedInAs = "";
  }

  private client(): Api | null {
    if (!this.tokenProvider) return null;
    if (!this.api || !this.apiFor || this.apiFor[0] !== this.apiBase || this.apiFor[1] !== this.tokenProvider) {
      this.api = createApi(this.apiBase, this.tokenProvider);
      this.apiFor = [this.apiBase, this.tokenProvider];
    }
    return this.api;
  }

  render() {
    const api = this.client();
    return html`
      <header>
        <h1>Integrations</h1>
        ${this.signedInAs ? html`<p class="who">Signed in as ${this.signedInAs}</p>` : nothing}
      </header>
      <main>
        ${api
          ? html`<h2 class="visually-hidden">CRM integrations</h2>
              <integrations-page .api=${api}></integrations-page>`
          : html`<p role="status">
              You are not signed in.
              ${this.signInUrl ? html`<a href=${this.signInUrl}>Sign in for local development</a>` : nothing}
            </p>`}
      </main>
    `;
  }

  static styles = [
    base,
    css`
      :host { display: block; background: var(--canvas); min-height: 100%; }
      header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
        gap: 0.5rem 1rem; padding: 1rem 1.25rem; background: var(--surface); border-bottom: 1px solid var(--line); }
      h1 { margin: 0; font-size: 1.4rem; }
      .who { margin: 0; color: var(--muted); }
      main { padding: 1.25rem; max-width: 72rem; margin: 0 auto; }
      a { color: var(--primary); }
    `,
  ];
}

customElements.define("dynamics-integration-settings", DynamicsIntegrationSettings);

declare global {
  interface HTMLElementTagNameMap {
    "dynamics-integration-settings": DynamicsIntegrationSettings;
  }
}
