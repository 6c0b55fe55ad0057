// The notifications bell: the workspace's in-app notices (the reconnect notice, with its reason in
// words). A reconnect notice's action starts the Microsoft sign-in again for the same environment.
import { LitElement, css, html, nothing } from "lit";
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import { reconnectReasonText } from "../pages/integrations-page";
import { base } from "./styles";

type Notice = Schemas["NotificationView"];

export class NotificationBell extends LitElement {
  static properties = {
    api: { attribute: false },
    canReconnect: { type: Boolean, attribute: "can-reconnect" },
    notices: { state: true },
    expanded: { state: true },
    error: { state: true },
    loadError: { state: true },
  };

  declare api: Api;
  /** Only admins may connect: others are told whom to ask instead of offered a button that is refused. */
  declare canReconnect: boolean;
  declare notices: Notice[];
  declare expanded: boolean;
  declare error: string;
  declare loadError: string;

  constructor() {
    super();
    this.canReconnect = true;
    this.notices = [];
    this.expanded = false;
    this.error = "";
    this.loadError = "";
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.reload();
  }

  async reload(): Promise<void> {
    const { data, error, response } = await this.api.GET("/api/notifications");
    // A failed load is said as such: an empty list would claim there is nothing to act on.
    this.loadError = data ? "" : problemText(error, response);
    if (data) this.notices = data.notifications;
  }

  private get unread(): number {
    return this.notices.filter((n) => !n.read).length;
  }

  private toggle(): void {
    this.expanded = !this.expanded;
    if (this.expanded) void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>("#notices")?.focus());
  }

  private async reconnect(notice: Notice): Promise<void> {
    this.error = "";
    const connection = await this.api.GET("/api/dynamics/connection");
    const environmentUrl = connection.data?.environmentUrl;
    if (!environmentUrl) {
      this.error = "No environment to reconnect to: open the Dynamics setup and connect.";
      return;
    }
    await this.api.POST("/api/notifications/{notification_id}/read", { params: { path: { notification_id: notice.id } } });
    const { data, error, response } = await this.api.POST("/api/dynamics/connect", { body: { environmentUrl } });
    if (!data) {
      this.error = problemText(error, response);
      return;
    }
    this.dispatchEvent(new CustomEvent("dynamics-connect", { detail: data.authorizationUrl, bubbles: true, composed: true }));
  }

  render() {
    const unread = this.unread;
    return html`<div class="wrap" @keydown=${(e: KeyboardEvent) => {
      if (e.key === "Escape" && this.expanded) {
        this.expanded = false;
        this.renderRoot.querySelector<HTMLElement>("#bell")?.focus();
      }
    }}>
      <button
        id="bell"
        class="bell"
        aria-expanded=${this.expanded ? "true" : "false"}
        aria-controls="notices"
        @click=${this.toggle}
      >
        <svg aria-hidden="true" viewBox="0 0 24 24" width="18" height="18">
          <path
            fill="currentColor"
            d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
          />
        </svg>
        Notifications${unread ? html` <span class="count">${unread}<span class="visually-hidden"> unread</span></span>` : nothing}
      </button>
      ${this.expanded
        ? html`<section id="notices" class="panel" tabindex="-1" aria-label="Notifications">
            ${this.loadError
              ? html`<p class="error" role="alert">Notifications could not be loaded: ${this.loadError}</p>`
              : this.notices.length === 0
                ? html`<p>No notifications.</p>`
                : nothing}
            <ul>
              ${this.notices.map(
                (n) => html`<li class=${n.read ? "read" : ""}>
                  <h3>${n.title}</h3>
                  <p>${n.message}</p>
                  ${n.kind === "dynamics_reconnect_required"
                    ? html`<p class="reason">Why: ${reconnectReasonText(n.reason)}</p>
                        ${this.canReconnect
                          ? html`<button class="btn primary" @click=${() => this.reconnect(n)}>Reconnect Dynamics</button>`
                          : html`<p>Ask a workspace admin to reconnect Dynamics 365.</p>`}`
                    : nothing}
                  <p class="when">${new Date(n.createdAt).toLocaleString()}</p>
                </li>`,
              )}
            </ul>
            ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
          </section>`
        : nothing}
    </div>`;
  }

  static styles = [
    base,
    css`
      .wrap { position: relative; }
      .bell svg { vertical-align: -3px; margin-right: 0.25rem; }
      .bell { border: 1px solid var(--line); background: var(--surface); color: var(--ink); border-radius: 999px;
        padding: 0.3rem 0.8rem; cursor: pointer; min-height: 2.25rem; }
      .count { display: inline-block; background: var(--bad); color: #fff; border-radius: 999px; padding: 0 0.45rem;
        margin-left: 0.25rem; font-size: 0.85rem; }
      .panel { position: absolute; right: 0; top: calc(100% + 0.4rem); width: min(24rem, calc(100vw - 1.5rem));
        background: var(--surface); border: 1px solid var(--line); border-radius: 10px; padding: 0.5rem 0.75rem;
        box-shadow: 0 8px 24px rgb(0 0 0 / 15%); z-index: 10; }
      ul { list-style: none; margin: 0; padding: 0; }
      li { border-bottom: 1px solid var(--line); padding: 0.5rem 0; }
      li:last-child { border-bottom: 0; }
      h3 { font-size: 1rem; margin: 0 0 0.25rem; }
      p { margin: 0.2rem 0; }
      .reason { color: var(--ink); }
      .when { color: var(--muted); font-size: 0.85rem; }
    `,
  ];
}

customElements.define("notification-bell", NotificationBell);
