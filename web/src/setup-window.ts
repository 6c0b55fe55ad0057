// The floating setup window: a modal dialog with the four steps of the setup guide, Back / Next, a
// stepper where each step is reachable once visited, and Update, which saves the whole configuration
// with If-Match. The steps are separate elements (src/steps/, contract in src/steps/contract.ts); this
// element keeps the working copy, the unsaved-changes state, validation problems and save conflicts.
import { LitElement, css, html, nothing } from "lit";
import type { Api } from "./api/client";
import { problemText, type Problem } from "./api/client";
import {
  STEPS,
  copy,
  problemsUnder,
  type Catalog,
  type ConfigChange,
  type Connection,
  type DynamicsConfig,
  type FieldProblem,
} from "./steps/contract";
import "./steps/step1-sync";
import "./steps/step2-fields";
import "./steps/step3-campaign";
import "./steps/step4-users";
import { base } from "./ui/styles";

const DRAFT_KEY = "dynamics-setup-draft";

/** This tab's unsaved edits across the Microsoft sign-in, with the version they were based on. */
interface Draft {
  workspace: string;
  etag: string;
  config: DynamicsConfig;
}

function takeDraft(): Draft | null {
  const raw = sessionStorage.getItem(DRAFT_KEY);
  sessionStorage.removeItem(DRAFT_KEY);
  try {
    const draft = raw ? (JSON.parse(raw) as Partial<Draft>) : null;
    // A draft without its ETag (an older page's) cannot be saved safely: it is dropped.
    return draft && typeof draft.etag === "string" && draft.config ? (draft as Draft) : null;
  } catch {
    return null;
  }
}

interface Conflict {
  version: number | null;
  savedBy: string;
  savedAt: string;
}

export class SetupWindow extends LitElement {
  static properties = {
    api: { attribute: false },
    workspace: { attribute: false },
    config: { state: true },
    catalog: { state: true },
    connection: { state: true },
    step: { state: true },
    visited: { state: true },
    problems: { state: true },
    conflict: { state: true },
    message: { state: true },
    loadError: { state: true },
    saving: { state: true },
    saveError: { state: true },
    confirmingClose: { state: true },
  };

  declare api: Api;
  /** The signed-in workspace (from the caller token), so a draft is restored only where it was made. */
  declare workspace: Promise<string> | undefined;
  declare config: DynamicsConfig | null;
  declare catalog: Catalog | null;
  declare connection: Connection | null;
  declare step: number;
  declare visited: number;
  declare problems: FieldProblem[];
  declare conflict: Conflict | null;
  declare message: string;
  declare loadError: string;
  declare saving: boolean;
  /** Why the last Update failed (not validation, not a conflict): an alert, as nothing was saved. */
  declare saveError: string;
  declare confirmingClose: boolean;
  private etag = "";
  private savedJson = "";
  private opener: HTMLElement | null = null;

  constructor() {
    super();
    this.config = null;
    this.catalog = null;
    this.connection = null;
    this.step = 1;
    this.visited = 1;
    this.problems = [];
    this.conflict = null;
    this.message = "";
    this.loadError = "";
    this.saving = false;
    this.saveError = "";
    this.confirmingClose = false;
  }

  get dirty(): boolean {
    return this.config !== null && JSON.stringify(this.config) !== this.savedJson;
  }

  private get dialog(): HTMLDialogElement | null {
    return this.renderRoot.querySelector("dialog");
  }

  /** Open the window at step 1 (the saved configuration, or this tab's unsaved draft after a sign-in). */
  async show(): Promise<void> {
    this.opener = (document.activeElement as HTMLElement | null) ?? null;
    this.step = 1;
    this.visited = 1;
    this.problems = [];
    this.conflict = null;
    this.message = "";
    this.saveError = "";
    await this.updateComplete;
    this.dialog?.showModal();
    window.addEventListener("beforeunload", this.onBeforeUnload);
    await this.load();
    this.focusStepTitle();
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener("beforeunload", this.onBeforeUnload);
  }

  private onBeforeUnload = (event: BeforeUnloadEvent) => {
    if (this.dirty) event.preventDefault();
  };

  async load(): Promise<void> {
    this.loadError = "";
    const [config, catalog, connection, workspace] = await Promise.all([
      this.api.GET("/api/dynamics/config"),
      this.catalog ? Promise.resolve({ data: this.catalog, error: undefined, response: undefined }) : this.api.GET("/api/dynamics/catalog"),
      this.api.GET("/api/dynamics/connection"),
      this.currentWorkspace(),
    ]);
    if (!config.data || !catalog.data) {
      this.loadError = problemText(config.error ?? catalog.error, config.response);
      return;
    }
    const draft = takeDraft();
    this.savedJson = JSON.stringify(config.data);
    if (draft && draft.workspace === workspace) {
      // Keep the version the edits were based on: if someone saved meanwhile, Update gets the 412 and
      // explains it, instead of writing these edits over the newer save.
      this.etag = draft.etag;
      this.config = draft.config;
    } else {
      this.etag = config.response.headers.get("ETag") ?? "";
      this.config = copy(config.data);
    }
    this.catalog = catalog.data;
    this.connection = connection.data ?? null;
  }

  /** Keep the unsaved edits of this tab across a full-page round trip (the Microsoft sign-in). */
  async keepDraft(): Promise<void> {
    if (!this.dirty || !this.config) return;
    const draft: Draft = { workspace: await this.currentWorkspace(), etag: this.etag, config: this.config };
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  }

  private currentWorkspace(): Promise<string> {
    return (this.workspace ?? Promise.resolve("")).catch(() => "");
  }

  private onChange(event: CustomEvent<ConfigChange>): void {
    if (!this.config) return;
    this.config = { ...this.config, [event.detail.section]: event.detail.value };
    this.message = "";
    this.saveError = "";
  }

  private go(step: number): void {
    this.step = step;
    this.visited = Math.max(this.visited, step);
    void this.updateComplete.then(() => this.focusStepTitle());
  }

  private focusStepTitle(): void {
    this.renderRoot.querySelector<HTMLElement>("#step-title")?.focus();
  }

  private get confirmDialog(): HTMLDialogElement | null {
    return this.renderRoot.querySelector<HTMLDialogElement>("dialog.confirm");
  }

  private requestClose(): void {
    if (this.dirty) {
      this.confirmingClose = true;
      void this.updateComplete.then(() => {
        // A modal of its own (top layer): focus cannot leave the question for the window behind it.
        const confirm = this.confirmDialog;
        if (confirm && !confirm.open) confirm.showModal();
        this.renderRoot.querySelector<HTMLElement>("#keep-editing")?.focus();
      });
      return;
    }
    this.close();
  }

  /** Tab past the last button comes back to the first, and Shift+Tab the other way (the APG dialog
   * pattern): the native modal would otherwise hand focus to the browser's own controls in between. */
  private wrapTab(event: KeyboardEvent): void {
    if (event.key !== "Tab") return;
    const buttons = [...(this.confirmDialog?.querySelectorAll<HTMLElement>("button") ?? [])];
    const edge = event.shiftKey ? buttons[0] : buttons[buttons.length - 1];
    if (!edge || (this.renderRoot as ShadowRoot).activeElement !== edge) return;
    event.preventDefault();
    (event.shiftKey ? buttons[buttons.length - 1] : buttons[0]).focus();
  }

  private keepEditing(): void {
    this.confirmingClose = false;
    this.confirmDialog?.close();
  }

  close(): void {
    this.confirmingClose = false;
    this.confirmDialog?.close();
    this.config = null;
    this.dialog?.close();
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    this.dispatchEvent(new CustomEvent("setup-closed", { bubbles: true, composed: true }));
    this.opener?.focus();
  }

  private async save(): Promise<void> {
    if (!this.config) return;
    this.saving = true;
    this.message = "";
    this.saveError = "";
    this.conflict = null;
    let answer;
    try {
      answer = await this.api.PUT("/api/dynamics/config", {
        params: { header: { "If-Match": this.etag } },
        body: this.config,
      });
    } finally {
      this.saving = false; // whatever happened, Update is usable again
    }
    const { data, error, response } = answer;
    if (data) {
      this.etag = response.headers.get("ETag") ?? this.etag;
      this.savedJson = JSON.stringify(data);
      this.config = copy(data);
      this.problems = [];
      this.message = `Saved (version ${this.etag.replace(/\D/g, "") || "?"}).`;
      this.dispatchEvent(new CustomEvent("config-saved", { bubbles: true, composed: true }));
      return;
    }
    const problem = (error ?? {}) as Problem;
    if (response.status === 412) {
      await this.explainConflict(problem);
      return;
    }
    if (response.status === 400 && problem.errors?.length) {
      this.problems = problem.errors;
      const first = STEPS.find((s) => problem.errors!.some((p) => p.pointer.startsWith(`/${s.section}`)));
      if (first && first.number !== this.step) this.go(first.number);
      this.message = `Not saved: ${problem.errors.length} problem(s) to fix, shown next to their fields.`;
      return;
    }
    this.saveError = `Not saved: ${problemText(problem, response)}`;
  }

  private async explainConflict(problem: Problem): Promise<void> {
    const { data } = await this.api.GET("/api/dynamics/config/history", { params: { query: { limit: 1 } } });
    const latest = data?.versions[0];
    this.conflict = {
      version: (problem.currentVersion as number | undefined) ?? latest?.version ?? null,
      savedBy: latest?.savedBy ?? "another admin",
      savedAt: latest?.savedAt ?? "",
    };
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>("#conflict-reload")?.focus();
  }

  private async reloadAfterConflict(): Promise<void> {
    this.conflict = null;
    this.problems = [];
    await this.load();
    this.message = "Reloaded the saved configuration; apply your changes again.";
    this.focusStepTitle();
  }

  private renderStep() {
    const config = this.config!;
    const catalog = this.catalog!;
    const current = STEPS[this.step - 1];
    const problems = problemsUnder(this.problems, `/${current.section}`);
    const props = { config, catalog, api: this.api, problems, connection: this.connection };
    switch (this.step) {
      case 1:
        return html`<step1-sync .config=${props.config} .catalog=${catalog} .api=${this.api} .problems=${problems} .connection=${this.connection}></step1-sync>`;
      case 2:
        return html`<step2-fields .config=${props.config} .catalog=${catalog} .api=${this.api} .problems=${problems} .connection=${this.connection}></step2-fields>`;
      case 3:
        return html`<step3-campaign .config=${props.config} .catalog=${catalog} .api=${this.api} .problems=${problems} .connection=${this.connection}></step3-campaign>`;
      default:
        return html`<step4-users .config=${props.config} .catalog=${catalog} .api=${this.api} .problems=${problems} .connection=${this.connection}></step4-users>`;
    }
  }

  render() {
    const current = STEPS[this.step - 1];
    return html`<dialog
      aria-labelledby="window-title"
      @cancel=${(e: Event) => {
        e.preventDefault();
        this.requestClose();
      }}
      @config-change=${this.onChange}
    >
      <div class="head">
        <h2 id="window-title">Dynamics 365 setup</h2>
        <button class="icon" aria-label="Close the setup window" @click=${this.requestClose}>✕</button>
      </div>
      <nav aria-label="Setup steps">
        <ol class="stepper">
          ${STEPS.map(
            (s) => html`<li>
              <button
                class="step ${s.number === this.step ? "current" : ""}"
                aria-current=${s.number === this.step ? "step" : nothing}
                ?disabled=${s.number > this.visited}
                @click=${() => this.go(s.number)}
              >
                <span class="n" aria-hidden="true">${s.number}</span>
                <span><span class="visually-hidden">Step ${s.number}: </span>${s.title}</span>
              </button>
            </li>`,
          )}
        </ol>
      </nav>
      <section class="body" aria-labelledby="step-title">
        <h3 id="step-title" tabindex="-1">Step ${current.number}: ${current.title}</h3>
        ${this.loadError ? html`<p role="alert" class="error">${this.loadError}</p>` : nothing}
        ${this.config && this.catalog ? this.renderStep() : this.loadError ? nothing : html`<p>Loading…</p>`}
      </section>
      ${this.conflict
        ? html`<div class="conflict" role="alert">
            <p>
              Not saved: ${this.conflict.savedBy} saved the configuration meanwhile
              ${this.conflict.version !== null ? html`(version ${this.conflict.version})` : nothing}
              ${this.conflict.savedAt ? html`at ${new Date(this.conflict.savedAt).toLocaleString()}` : nothing}.
              Reload it and apply your changes again; reloading discards your changes.
            </p>
            <button class="btn" id="conflict-reload" @click=${this.reloadAfterConflict}>Reload the saved configuration</button>
          </div>`
        : nothing}
      ${this.saveError ? html`<p class="message error" role="alert">${this.saveError}</p>` : nothing}
      <p class="message" role="status">${this.message}</p>
      ${this.problems.length
        ? html`<ul class="problems" aria-label="Problems to fix">
            ${this.problems.map((p) => {
              const step = STEPS.find((s) => p.pointer.startsWith(`/${s.section}`));
              return html`<li>
                ${step && step.number !== this.step
                  ? html`<button class="link" @click=${() => this.go(step.number)}>Step ${step.number}</button>:`
                  : nothing}
                ${p.message} <code>${p.pointer}</code>
              </li>`;
            })}
          </ul>`
        : nothing}
      <div class="foot">
        <button class="btn" ?disabled=${this.step === 1} @click=${() => this.go(this.step - 1)}>Back</button>
        ${this.step < STEPS.length
          ? html`<button class="btn" @click=${() => this.go(this.step + 1)}>Next</button>`
          : nothing}
        <span class="spacer"></span>
        <button class="btn primary" ?disabled=${!this.config || this.saving} @click=${this.save}>
          ${this.saving ? "Saving…" : "Update"}
        </button>
      </div>
      <dialog
        class="confirm"
        role="alertdialog"
        aria-labelledby="confirm-title"
        aria-describedby="confirm-text"
        @cancel=${(e: Event) => {
          e.preventDefault(); // Escape answers the question with its safe choice
          e.stopPropagation();
          this.keepEditing();
        }}
        @close=${() => (this.confirmingClose = false)}
        @keydown=${this.wrapTab}
      >
        ${this.confirmingClose
          ? html`<h3 id="confirm-title">Discard your changes?</h3>
              <p id="confirm-text">The setup has changes that are not saved. Closing the window discards them.</p>
              <div class="foot">
                <button class="btn" id="keep-editing" @click=${this.keepEditing}>Keep editing</button>
                <button class="btn danger" @click=${this.close}>Discard and close</button>
              </div>`
          : nothing}
      </dialog>
    </dialog>`;
  }

  static styles = [
    base,
    css`
      dialog {
        width: min(56rem, calc(100vw - 1rem)); max-height: calc(100dvh - 1rem); padding: 0; border: 1px solid var(--line);
        border-radius: 12px; color: var(--ink); box-shadow: 0 12px 40px rgb(0 0 0 / 25%);
      }
      dialog::backdrop { background: rgb(20 20 30 / 45%); }
      .head { display: flex; justify-content: space-between; align-items: center; padding: 0.75rem 1rem;
        border-bottom: 1px solid var(--line); }
      h2 { margin: 0; font-size: 1.2rem; }
      .icon { border: 0; background: none; font-size: 1.2rem; width: 2.5rem; height: 2.5rem; cursor: pointer; color: var(--ink); }
      .stepper { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; margin: 0; padding: 0.75rem 1rem; }
      .step { display: inline-flex; align-items: center; gap: 0.4rem; border: 1px solid var(--line); border-radius: 999px;
        background: var(--surface); color: var(--ink); padding: 0.25rem 0.75rem 0.25rem 0.25rem; cursor: pointer; min-height: 2.25rem; }
      .step:disabled { color: var(--muted); cursor: default; }
      .step.current { border-color: var(--primary); color: var(--primary); font-weight: 600; }
      .n { display: inline-grid; place-items: center; width: 1.6rem; height: 1.6rem; border-radius: 50%;
        background: var(--canvas); color: var(--ink); }
      .step.current .n { background: var(--primary); color: var(--primary-ink); }
      .body { padding: 0 1rem 0.5rem; }
      h3 { font-size: 1.05rem; }
      .foot { display: flex; gap: 0.5rem; padding: 0.75rem 1rem; border-top: 1px solid var(--line); align-items: center; }
      .spacer { flex: 1; }
      .message { margin: 0; padding: 0 1rem; min-height: 1.2em; }
      .conflict { margin: 0.5rem 1rem; padding: 0.75rem; border: 1px solid var(--bad); border-radius: 8px; }
      .conflict p { margin: 0 0 0.5rem; }
      dialog.confirm { width: min(30rem, calc(100vw - 2rem)); background: var(--surface); border: 2px solid var(--bad);
        border-radius: 10px; padding: 0 1rem; box-shadow: 0 8px 24px rgb(0 0 0 / 20%); }
      .confirm .foot { border: 0; padding: 0 0 1rem; justify-content: flex-end; }
      .btn.danger { border-color: var(--bad); color: var(--bad); }
      .problems { margin: 0.25rem 1rem; padding-left: 1.25rem; color: var(--bad); }
      .link { border: 0; background: none; color: var(--primary); text-decoration: underline; cursor: pointer; padding: 0; }
    `,
  ];
}

customElements.define("setup-window", SetupWindow);
