// A searchable dropdown of Dynamics users (WAI-ARIA combobox with a listbox popup,
// https://www.w3.org/WAI/ARIA/apg/patterns/combobox/): typing searches GET /api/dynamics/users by name or
// e-mail, a page at a time ("More users" follows nextCursor); Down / Up move, Enter chooses, Escape closes.
// A choice fires `user-change` with the user (or null when cleared).
import { LitElement, css, html, nothing } from "lit";
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";

export type DynamicsUser = Schemas["DynamicsUserInfo"];

let counter = 0;

export function userText(user: DynamicsUser): string {
  return user.email ? `${user.fullName || user.email} <${user.email}>` : user.fullName || user.id;
}

export class UserPicker extends LitElement {
  static properties = {
    api: { attribute: false },
    label: {},
    value: {},
    known: { attribute: false },
    problem: {},
    open: { state: true },
    query: { state: true },
    users: { state: true },
    cursor: { state: true },
    active: { state: true },
    error: { state: true },
    busy: { state: true },
  };

  declare api: Api;
  declare label: string;
  declare value: string;
  declare known: Map<string, DynamicsUser>;
  declare problem: string;
  declare open: boolean;
  declare query: string;
  declare users: DynamicsUser[];
  declare cursor: string | null;
  declare active: number;
  declare error: string;
  declare busy: boolean;
  private uid = `up${++counter}`;
  private timer = 0;
  private asked = 0;

  constructor() {
    super();
    this.label = "Dynamics user";
    this.value = "";
    this.known = new Map();
    this.problem = "";
    this.open = false;
    this.query = "";
    this.users = [];
    this.cursor = null;
    this.active = -1;
    this.error = "";
    this.busy = false;
  }

  private get shown(): string {
    if (!this.value) return "";
    const user = this.known.get(this.value.toLowerCase());
    return user ? userText(user) : this.value;
  }

  private async search(more = false): Promise<void> {
    const asked = ++this.asked;
    this.busy = true;
    const query: { search?: string; cursor?: string; limit: number } = { limit: 20 };
    if (this.query.trim()) query.search = this.query.trim();
    if (more && this.cursor) query.cursor = this.cursor;
    const { data, error, response } = await this.api.GET("/api/dynamics/users", { params: { query } });
    if (asked !== this.asked) return; // a newer search answered or will answer
    this.busy = false;
    if (!data) {
      this.error = problemText(error, response);
      return;
    }
    this.error = "";
    for (const u of data.users) this.known.set(u.id.toLowerCase(), u);
    this.users = more ? [...this.users, ...data.users] : data.users;
    this.cursor = data.nextCursor ?? null;
    if (!more) this.active = this.users.length ? 0 : -1;
  }

  private show(): void {
    if (!this.open) {
      this.open = true;
      void this.search();
    }
  }

  private onInput(e: Event): void {
    this.query = (e.target as HTMLInputElement).value;
    this.open = true;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.search(), 200);
  }

  private choose(user: DynamicsUser | null): void {
    this.open = false;
    this.query = "";
    this.active = -1;
    this.dispatchEvent(new CustomEvent("user-change", { detail: user, bubbles: true, composed: true }));
  }

  private count(): number {
    return this.users.length + (this.cursor ? 1 : 0);
  }

  private pick(index: number): void {
    if (index < this.users.length) this.choose(this.users[index]);
    else if (this.cursor) void this.search(true);
  }

  private onKey(e: KeyboardEvent): void {
    const n = this.count();
    if (e.key === "ArrowDown") {
      e.preventDefault();
      if (!this.open) this.show();
      else if (n) this.active = (this.active + 1) % n;
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      if (this.open && n) this.active = (this.active - 1 + n) % n;
    } else if (e.key === "Enter" && this.open && this.active >= 0) {
      e.preventDefault();
      this.pick(this.active);
    } else if (e.key === "Escape" && this.open) {
      e.preventDefault();
      e.stopPropagation(); // closes the list, not the setup window
      this.open = false;
      this.query = "";
    }
  }

  private onBlur(e: FocusEvent): void {
    const next = e.relatedTarget as Node | null;
    if (next && this.renderRoot.contains(next)) return;
    this.open = false;
    this.query = "";
  }

  updated(): void {
    if (this.open && this.active >= 0)
      this.renderRoot.querySelector(`#${this.uid}-o${this.active}`)?.scrollIntoView({ block: "nearest" });
  }

  render() {
    const id = this.uid;
    const listId = `${id}-list`;
    const activeId = this.open && this.active >= 0 ? `${id}-o${this.active}` : "";
    const describedBy = this.problem ? `${id}-problem` : "";
    return html`<div class="wrap" @focusout=${this.onBlur}>
      <label for="${id}-input">${this.label}</label>
      <div class="field">
        <input
          id="${id}-input"
          type="text"
          role="combobox"
          autocomplete="off"
          aria-autocomplete="list"
          aria-expanded=${this.open ? "true" : "false"}
          aria-controls=${listId}
          aria-activedescendant=${activeId || nothing}
          aria-describedby=${describedBy || nothing}
          aria-invalid=${this.problem ? "true" : "false"}
          placeholder="Search by name or e-mail"
          .value=${this.open ? this.query : this.shown}
          @focus=${(e: Event) => (e.target as HTMLInputElement).select()}
          @click=${this.show}
          @input=${this.onInput}
          @keydown=${this.onKey}
        />
        ${this.value
          ? html`<button class="btn clear" type="button" aria-label="Clear ${this.label}" @click=${() => this.choose(null)}>✕</button>`
          : nothing}
      </div>
      <ul id=${listId} role="listbox" aria-label=${this.label} ?hidden=${!this.open}>
        ${this.users.map(
          (u, i) => html`<li
            id="${id}-o${i}"
            role="option"
            aria-selected=${i === this.active ? "true" : "false"}
            class=${i === this.active ? "active" : ""}
            @mousedown=${(e: Event) => e.preventDefault()}
            @click=${() => this.choose(u)}
          >
            <span class="who">${u.fullName || u.email || u.id}</span>
            ${u.email ? html`<span class="mail">${u.email}</span>` : nothing}
          </li>`,
        )}
        ${this.cursor
          ? html`<li
              id="${id}-o${this.users.length}"
              role="option"
              aria-selected=${this.active === this.users.length ? "true" : "false"}
              class="more ${this.active === this.users.length ? "active" : ""}"
              @mousedown=${(e: Event) => e.preventDefault()}
              @click=${() => void this.search(true)}
            >More users…</li>`
          : nothing}
        ${!this.users.length && !this.busy
          ? html`<li role="option" aria-disabled="true" aria-selected="false" class="none">${this.error || "No Dynamics user matches."}</li>`
          : nothing}
      </ul>
      <span class="visually-hidden" role="status">${this.open && !this.busy ? `${this.users.length} users listed` : ""}</span>
      ${this.problem ? html`<p class="error" id="${id}-problem" role="alert">${this.problem}</p>` : nothing}
    </div>`;
  }

  static styles = [
    base,
    css`
      :host { display: block; min-width: 0; }
      .wrap { position: relative; display: grid; gap: 0.2rem; }
      .field { display: flex; gap: 0.25rem; }
      input { flex: 1; min-width: 0; padding: 0.4rem; border: 1px solid #6b6b75; border-radius: 6px; }
      .clear { padding: 0.2rem 0.6rem; }
      ul { position: absolute; top: 100%; left: 0; right: 0; z-index: 5; margin: 0.15rem 0 0; padding: 0.2rem 0;
        list-style: none; background: var(--surface); border: 1px solid #6b6b75; border-radius: 6px;
        max-height: 16rem; overflow: auto; box-shadow: 0 6px 18px rgb(0 0 0 / 0.15); }
      ul[hidden] { display: none; }
      li { padding: 0.35rem 0.6rem; cursor: pointer; display: grid; }
      li.active { background: #e3eefb; outline: 2px solid var(--focus); outline-offset: -2px; }
      .mail { color: var(--muted); font-size: 0.85rem; overflow-wrap: anywhere; }
      .none { color: var(--muted); cursor: default; }
      .more { color: var(--primary); }
      .error { margin: 0.15rem 0; }
    `,
  ];
}

customElements.define("user-picker", UserPicker);
