// Step 4, User mapping: which Dynamics user stands for each platform identity (the profile that runs a
// campaign: the activity's owner) and each platform user (the owner of what that user exports), and the
// default owner for exports by users not mapped. Dynamics users are picked in a searchable dropdown
// (user-picker.ts). The API lists no platform users or identities (the platform sends them with its
// exports and activities), so the rows are the ones the configuration holds plus those an admin adds;
// "Use suggestions" asks POST /api/dynamics/users/suggestions for the Dynamics user with the same e-mail as
// each unmapped row (the row's e-mail is only for that look-up and is not saved).
import { css, html, nothing } from "lit";
import type { Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";
import {
  copy,
  emitChange,
  problemAt,
  StepElement,
  stepProperties,
} from "./contract";
import type { DynamicsUser } from "./user-picker";
import "./user-picker";

type Users = Schemas["UserMapping"];
type Kind = "identities" | "users";
const P = "/userMapping";
const ID_KEY = { identities: "identityId", users: "userId" } as const;
const looksLikeEmail = (text: string) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(text);

export class Step4Users extends StepElement {
  static properties = {
    ...stepProperties,
    emails: { state: true },
    suggesting: { state: true },
    suggestionNote: { state: true },
    known: { state: true },
    namesError: { state: true },
  };

  declare emails: Record<string, string>;
  declare suggesting: boolean;
  declare suggestionNote: string;
  declare known: Map<string, DynamicsUser>;
  declare namesError: string;

  constructor() {
    super();
    this.problems = [];
    this.connection = null;
    this.emails = {};
    this.suggesting = false;
    this.suggestionNote = "";
    this.known = new Map();
    this.namesError = "";
  }

  // The control to focus once the window hands back the edited configuration (added row, or Add after a
  // removal), so keyboard users are not left on a button that moved or vanished.
  private focusNext = "";

  updated(): void {
    const target = this.focusNext && this.renderRoot.querySelector<HTMLElement>(this.focusNext);
    if (target) {
      this.focusNext = "";
      target.focus();
    }
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.loadNames();
  }

  /** Names for the users the configuration already holds (the first page covers most organisations). */
  private async loadNames(): Promise<void> {
    if (!this.api) return;
    const { data, error, response } = await this.api.GET("/api/dynamics/users", { params: { query: { limit: 200 } } });
    // Without names the rows show bare ids: say why rather than let that pass for the answer.
    this.namesError = data ? "" : problemText(error, response);
    if (!data) return;
    const known = new Map(this.known);
    for (const u of data.users) known.set(u.id.toLowerCase(), u);
    this.known = known;
  }

  private get mapping(): Users {
    const m = (this.config.userMapping ?? {}) as Users;
    return { identities: m.identities ?? [], users: m.users ?? [], defaultOwnerId: m.defaultOwnerId ?? null };
  }

  private emit(next: Users): void {
    emitChange(this, "userMapping", next);
  }

  private remember(user: DynamicsUser | null): void {
    if (user && !this.known.has(user.id.toLowerCase())) this.known = new Map(this.known).set(user.id.toLowerCase(), user);
  }

  private platformId(kind: Kind, index: number): string {
    const row = this.mapping[kind]![index] as Record<string, string>;
    return row[ID_KEY[kind]] ?? "";
  }

  private emailOf(kind: Kind, index: number): string {
    const id = this.platformId(kind, index);
    return this.emails[`${kind}:${id}`] ?? (looksLikeEmail(id) ? id : "");
  }

  private setRow(kind: Kind, index: number, patch: Record<string, string>): void {
    const next = copy(this.mapping);
    const rows = next[kind] as Record<string, string>[];
    rows[index] = { ...rows[index], ...patch };
    this.emit(next);
  }

  private addRow(kind: Kind): void {
    const next = copy(this.mapping);
    (next[kind] as Record<string, string>[]).push({ [ID_KEY[kind]]: "", dynamicsUserId: "" });
    this.focusNext = `#${kind}-${next[kind]!.length - 1}-id`;
    this.emit(next);
  }

  private removeRow(kind: Kind, index: number): void {
    const next = copy(this.mapping);
    next[kind]!.splice(index, 1);
    this.focusNext = `#add-${kind}`;
    this.emit(next);
  }

  private async suggest(): Promise<void> {
    const people: { platformId: string; email: string; kind: Kind; index: number }[] = [];
    for (const kind of ["identities", "users"] as Kind[])
      this.mapping[kind]!.forEach((row, index) => {
        const email = this.emailOf(kind, index);
        if (!row.dynamicsUserId && email) people.push({ platformId: `${kind}:${index}`, email, kind, index });
      });
    if (!people.length) {
      this.suggestionNote = "No unmapped row has an e-mail to look up.";
      return;
    }
    this.suggesting = true;
    const { data, error, response } = await this.api.POST("/api/dynamics/users/suggestions", {
      body: { people: people.slice(0, 200).map(({ platformId, email }) => ({ platformId, email })) },
    });
    this.suggesting = false;
    if (!data) {
      this.suggestionNote = problemText(error, response);
      return;
    }
    const next = copy(this.mapping);
    let filled = 0;
    for (const s of data.suggestions) {
      const person = people.find((p) => p.platformId === s.platformId);
      if (!person || !s.user) continue;
      this.remember(s.user);
      (next[person.kind]![person.index] as Record<string, string>).dynamicsUserId = s.user.id;
      filled++;
    }
    this.suggestionNote = `${filled} of ${people.length} unmapped row(s) filled by e-mail.`;
    if (filled) this.emit(next);
  }

  private renderRows(kind: Kind, title: string, help: string, idLabel: string) {
    const rows = this.mapping[kind]!;
    const singular = kind === "identities" ? "identity" : "user";
    return html`<fieldset>
      <legend>${title}</legend>
      <p class="hint">${help}</p>
      ${problemAt(this.problems, `${P}/${kind}`) ? html`<p class="error" role="alert">${problemAt(this.problems, `${P}/${kind}`)}</p>` : nothing}
      ${rows.length ? nothing : html`<p class="hint">No ${singular} mapped yet.</p>`}
      <ol class="rows">
        ${rows.map((_row, i) => {
          const n = i + 1;
          const at = `${P}/${kind}/${i}`;
          const idProblem = problemAt(this.problems, `${at}/${ID_KEY[kind]}`) || problemAt(this.problems, at);
          const id = this.platformId(kind, i);
          return html`<li class="row" data-testid="${kind}-row">
            <label class="cell">
              ${idLabel} ${n}
              <input
                id="${kind}-${i}-id"
                .value=${id}
                aria-invalid=${idProblem ? "true" : "false"}
                aria-describedby=${idProblem ? `${kind}-${i}-id-error` : nothing}
                @change=${(e: Event) => this.setRow(kind, i, { [ID_KEY[kind]]: (e.target as HTMLInputElement).value.trim() })}
              />
              ${idProblem ? html`<span class="error" id="${kind}-${i}-id-error" role="alert">${idProblem}</span>` : nothing}
            </label>
            <label class="cell">
              E-mail of ${singular} ${n} (for suggestions)
              <input
                type="email"
                .value=${this.emailOf(kind, i)}
                @change=${(e: Event) =>
                  (this.emails = { ...this.emails, [`${kind}:${id}`]: (e.target as HTMLInputElement).value.trim() })}
              />
            </label>
            <user-picker
              class="cell"
              .api=${this.api}
              .known=${this.known}
              label="Dynamics user for ${singular} ${n}"
              .value=${this.mapping[kind]![i].dynamicsUserId ?? ""}
              .problem=${problemAt(this.problems, `${at}/dynamicsUserId`)}
              @user-change=${(e: CustomEvent<DynamicsUser | null>) => {
                this.remember(e.detail);
                this.setRow(kind, i, { dynamicsUserId: e.detail?.id ?? "" });
              }}
            ></user-picker>
            <button class="btn remove" type="button" @click=${() => this.removeRow(kind, i)}>Remove ${singular} ${n}</button>
          </li>`;
        })}
      </ol>
      <button class="btn" id="add-${kind}" type="button" @click=${() => this.addRow(kind)}>Add ${singular}</button>
    </fieldset>`;
  }

  render() {
    const m = this.mapping;
    return html`
      <p class="hint">Rows are the platform ${"identities"} and users this configuration maps; add the ones to map.
        Exports and activity logs are attributed to the Dynamics user chosen for each.</p>
      <div class="suggest">
        <button class="btn" type="button" ?disabled=${this.suggesting} @click=${this.suggest}>Use suggestions</button>
        <span class="hint">Fills each unmapped row with the Dynamics user that has the same e-mail.</span>
        <p role="status" data-testid="suggestion-note">${this.suggestionNote}</p>
      </div>
      ${this.namesError
        ? html`<p class="error" role="alert">The Dynamics users could not be loaded: ${this.namesError}</p>`
        : nothing}
      ${this.renderRows(
        "identities",
        "Identities mapping",
        "An identity is the profile that runs a campaign (a LinkedIn profile or an e-mail sender). The Dynamics activity log shows the mapped Dynamics user as the one who executed the action.",
        "Platform identity",
      )}
      ${this.renderRows(
        "users",
        "Users mapping",
        "A platform user's exports, automatic ones included, are owned by the mapped Dynamics user and governed by that user's permissions.",
        "Platform user",
      )}
      <fieldset>
        <legend>Default CRM owner</legend>
        <p class="hint">Owner of the contacts and companies exported by a platform user who is not mapped above.</p>
        <user-picker
          .api=${this.api}
          .known=${this.known}
          label="Default CRM owner"
          .value=${m.defaultOwnerId ?? ""}
          .problem=${problemAt(this.problems, `${P}/defaultOwnerId`)}
          @user-change=${(e: CustomEvent<DynamicsUser | null>) => {
            this.remember(e.detail);
            this.emit({ ...copy(m), defaultOwnerId: e.detail?.id ?? null });
          }}
        ></user-picker>
      </fieldset>
    `;
  }

  static styles = [
    base,
    css`
      fieldset { border: 1px solid var(--line); border-radius: 8px; margin: 0.75rem 0; padding: 0.5rem 0.75rem; min-width: 0; }
      legend { font-weight: 600; padding: 0 0.25rem; }
      .hint { color: var(--muted); margin: 0.1rem 0 0.4rem; font-size: 0.9rem; }
      .suggest { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
      .suggest p { margin: 0; flex-basis: 100%; }
      .rows { list-style: none; margin: 0; padding: 0; }
      .row { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr)); gap: 0.5rem; align-items: start;
        padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
      .cell { display: grid; gap: 0.2rem; min-width: 0; }
      input { padding: 0.4rem; border: 1px solid #6b6b75; border-radius: 6px; width: 100%; }
      .remove { align-self: end; }
    `,
  ];
}

customElements.define("step4-users", Step4Users);
