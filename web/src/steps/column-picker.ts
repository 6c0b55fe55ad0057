// The Dynamics column dropdown of Step 2: an editable combobox (type to filter the hundreds of columns a
// real environment has) whose every option carries its compatibility icon: blue check (ok), yellow
// exclamation (may not fit, review) or red X (cannot be applied). The icon is a shape plus a word for
// assistive technology, never colour alone; each option's reason is its description (aria-describedby)
// and shows as a bubble when the option is hovered or is the keyboard's active option. A red option
// cannot be chosen: choosing it explains why instead (WAI-ARIA combobox pattern with a listbox popup,
// https://www.w3.org/WAI/ARIA/apg/patterns/combobox/).
import { LitElement, css, html, nothing } from "lit";
import { base } from "../ui/styles";

export type Level = "ok" | "warning" | "error";

export interface ColumnChoice {
  value: string;
  label: string;
  level: Level;
  reason: string;
}

export const LEVEL_WORD: Record<Level, string> = { ok: "Compatible", warning: "Review", error: "Cannot be applied" };
const SHAPE: Record<Level, string> = { ok: "✓", warning: "!", error: "✕" };
const ORDER: Record<Level, number> = { ok: 0, warning: 1, error: 2 };

export function iconShape(level: Level): string {
  return SHAPE[level];
}

export class ColumnPicker extends LitElement {
  static properties = {
    label: {},
    value: {},
    choices: { attribute: false },
    loading: { type: Boolean },
    problem: {},
    note: {},
    open: { state: true },
    query: { state: true },
    active: { state: true },
    refusal: { state: true },
  };

  declare label: string;
  declare value: string;
  declare choices: ColumnChoice[];
  declare loading: boolean;
  declare problem: string;
  declare note: string;
  declare open: boolean;
  declare query: string;
  declare active: number;
  declare refusal: string;

  constructor() {
    super();
    this.label = "Dynamics column";
    this.value = "";
    this.choices = [];
    this.loading = false;
    this.problem = "";
    this.note = "";
    this.open = false;
    this.query = "";
    this.active = -1;
    this.refusal = "";
  }

  private get selected(): ColumnChoice | undefined {
    return this.choices.find((c) => c.value === this.value);
  }

  private get filtered(): ColumnChoice[] {
    const q = this.query.trim().toLowerCase();
    return this.choices
      .filter((c) => !q || c.label.toLowerCase().includes(q))
      .sort((a, b) => ORDER[a.level] - ORDER[b.level] || a.label.localeCompare(b.label));
  }

  private show(): void {
    if (this.open) return;
    this.open = true;
    const list = this.filtered;
    const at = list.findIndex((c) => c.value === this.value);
    this.active = at >= 0 ? at : list.length ? 0 : -1;
  }

  private hide(): void {
    this.open = false;
    this.query = "";
    this.active = -1;
  }

  private choose(choice: ColumnChoice): void {
    if (choice.level === "error") {
      this.refusal = `${choice.label} cannot be chosen: ${choice.reason}`;
      return;
    }
    this.refusal = "";
    this.hide();
    this.dispatchEvent(new CustomEvent<string>("column-change", { detail: choice.value, bubbles: true, composed: true }));
  }

  private onKey(e: KeyboardEvent): void {
    const list = this.filtered;
    const move = (to: number) => {
      e.preventDefault();
      if (!this.open) this.show();
      else if (list.length) this.active = Math.max(0, Math.min(list.length - 1, to));
    };
    switch (e.key) {
      case "ArrowDown":
        move(this.active + 1);
        break;
      case "ArrowUp":
        move(this.active - 1);
        break;
      case "Home":
        if (this.open) move(0);
        break;
      case "End":
        if (this.open) move(list.length - 1);
        break;
      case "Enter":
        if (this.open && list[this.active]) {
          e.preventDefault();
          this.choose(list[this.active]);
        }
        break;
      case "Escape":
        if (this.open) {
          // Closes the list only, not the setup window around it.
          e.preventDefault();
          e.stopPropagation();
          this.hide();
        }
        break;
      case "Tab":
        this.hide();
        break;
    }
  }

  updated(): void {
    if (this.open) this.renderRoot.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  }

  render() {
    const sel = this.selected;
    const list = this.open ? this.filtered : [];
    const described = ["sel-reason", this.problem ? "problem" : "", this.note ? "note" : "", this.refusal ? "refusal" : ""]
      .filter(Boolean)
      .join(" ");
    return html`<label for="input">${this.label}</label>
      <div class="box ${this.problem ? "invalid" : ""}">
        ${sel ? html`<span class="icon ${sel.level}" aria-hidden="true">${SHAPE[sel.level]}</span>` : nothing}
        <input
          id="input"
          role="combobox"
          autocomplete="off"
          aria-autocomplete="list"
          aria-expanded=${this.open ? "true" : "false"}
          aria-controls="list"
          aria-activedescendant=${this.open && this.active >= 0 && list[this.active] ? `o-${this.active}` : nothing}
          aria-describedby=${described}
          aria-invalid=${this.problem ? "true" : nothing}
          placeholder=${this.loading ? "Loading columns…" : "Type to search columns"}
          .value=${this.open ? this.query : sel?.label ?? this.value}
          @input=${(e: Event) => {
            this.query = (e.target as HTMLInputElement).value;
            this.open = true;
            this.active = this.filtered.length ? 0 : -1;
          }}
          @click=${() => (this.open ? this.hide() : this.show())}
          @keydown=${this.onKey}
          @blur=${() => this.hide()}
        />
      </div>
      <ul id="list" role="listbox" aria-label=${this.label} ?hidden=${!this.open}>
        ${this.open && !list.length
          ? html`<li class="empty" role="presentation">${this.loading ? "Loading columns…" : "No column matches."}</li>`
          : nothing}
        ${list.map(
          (c, i) => html`<li
            id="o-${i}"
            role="option"
            class="${c.level} ${i === this.active ? "active" : ""}"
            aria-selected=${c.value === this.value ? "true" : "false"}
            aria-disabled=${c.level === "error" ? "true" : nothing}
            aria-describedby="r-${i}"
            data-value=${c.value}
            @mousedown=${(e: Event) => e.preventDefault()}
            @mouseenter=${() => (this.active = i)}
            @click=${() => this.choose(c)}
          >
            <span class="icon ${c.level}" aria-hidden="true">${SHAPE[c.level]}</span>
            <span class="visually-hidden">${LEVEL_WORD[c.level]}: </span>${c.label}
            <span class="reason" id="r-${i}">${LEVEL_WORD[c.level]}: ${c.reason}</span>
          </li>`,
        )}
      </ul>
      <p class="hint" id="sel-reason">
        ${sel ? html`<span class="word ${sel.level}">${LEVEL_WORD[sel.level]}:</span> ${sel.reason}` : nothing}
      </p>
      ${this.note ? html`<p class="warn" id="note"><span aria-hidden="true">⚠ </span>${this.note}</p>` : nothing}
      ${this.refusal ? html`<p class="error" id="refusal" role="alert">${this.refusal}</p>` : nothing}
      ${this.problem ? html`<p class="error" id="problem" role="alert">${this.problem}</p>` : nothing}`;
  }

  static styles = [
    base,
    css`
      :host { display: block; position: relative; min-width: 0; }
      label { display: block; font-size: 0.9rem; }
      .box { display: flex; align-items: center; gap: 0.3rem; border: 1px solid #6b6b75; border-radius: 6px; padding: 0 0.3rem;
        background: var(--surface); }
      .box.invalid { border-color: var(--bad); }
      .box:focus-within { outline: 3px solid var(--focus); outline-offset: 1px; }
      input { border: 0; outline: 0; padding: 0.4rem 0.1rem; width: 100%; min-width: 0; background: transparent; color: var(--ink); }
      ul { position: absolute; z-index: 5; left: 0; right: 0; margin: 0.1rem 0 0; padding: 0.2rem 0; list-style: none;
        max-height: 16rem; overflow: auto; background: var(--surface); border: 1px solid var(--line); border-radius: 6px;
        box-shadow: 0 8px 20px rgb(0 0 0 / 18%); }
      ul[hidden] { display: none; }
      li[role="option"] { position: relative; padding: 0.3rem 0.5rem; cursor: pointer; display: flex; flex-wrap: wrap; gap: 0.35rem;
        align-items: baseline; }
      li[aria-selected="true"] { font-weight: 600; }
      li.active { background: var(--canvas); outline: 2px solid var(--focus); outline-offset: -2px; }
      li.error { color: var(--muted); cursor: not-allowed; }
      li .reason { display: none; flex-basis: 100%; font-size: 0.85rem; color: var(--ink); background: #fff8e1;
        border: 1px solid var(--line); border-radius: 4px; padding: 0.15rem 0.4rem; }
      li.active .reason, li:hover .reason { display: block; }
      li.empty { padding: 0.3rem 0.5rem; color: var(--muted); }
      .icon { display: inline-grid; place-items: center; flex: none; width: 1.15rem; height: 1.15rem; border-radius: 50%;
        font-size: 0.75rem; font-weight: 700; color: #fff; }
      .icon.ok { background: var(--primary); }
      .icon.warning { background: #f2c200; color: #1b1b1f; border-radius: 2px; }
      .icon.error { background: var(--bad); border-radius: 3px; }
      .hint { margin: 0.15rem 0 0; font-size: 0.85rem; color: var(--muted); min-height: 0; }
      .hint:empty { display: none; }
      .word { font-weight: 600; }
      .word.ok { color: var(--primary); }
      .word.warning { color: var(--warn); }
      .word.error { color: var(--bad); }
      .warn { color: var(--warn); margin: 0.15rem 0 0; font-size: 0.9rem; }
      .error { margin: 0.15rem 0 0; font-size: 0.9rem; }
    `,
  ];
}

customElements.define("column-picker", ColumnPicker);
