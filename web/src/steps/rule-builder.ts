// The custom-mapping pop-up: an AND/OR rule of conditions "platform field ↔ Dynamics column", with
// nested groups (one level, which covers "A AND B, OR C"). Works on a copy; `rule-save` hands the new rule
// back, `rule-cancel` leaves the old one.
import { LitElement, css, html, nothing, type TemplateResult } from "lit";
import type { Schemas } from "../api/client";
import { base } from "../ui/styles";
import { copy } from "./contract";

type Rule = Schemas["Rule"];
type Condition = Schemas["Condition"];
export interface Choice {
  value: string;
  label: string;
}

const isGroup = (item: Rule | Condition): item is Rule => "operator" in item;
const MAX_DEPTH = 2;

export class RuleBuilder extends LitElement {
  static properties = {
    heading: { type: String },
    rule: { attribute: false },
    platformFields: { attribute: false },
    columns: { attribute: false },
    working: { state: true },
  };

  declare heading: string;
  declare rule: Rule | null;
  declare platformFields: Choice[];
  declare columns: Choice[];
  declare working: Rule;

  constructor() {
    super();
    this.heading = "Custom mapping";
    this.rule = null;
    this.platformFields = [];
    this.columns = [];
    this.working = { operator: "and", conditions: [] };
  }

  async open(): Promise<void> {
    this.working = this.rule ? copy(this.rule) : { operator: "or", conditions: [this.blankCondition()] };
    await this.updateComplete;
    this.renderRoot.querySelector("dialog")?.showModal();
    this.renderRoot.querySelector<HTMLElement>("select")?.focus();
  }

  private blankCondition(): Condition {
    return { platformField: this.platformFields[0]?.value ?? "", dynamicsField: this.columns[0]?.value ?? "" };
  }

  private touch(): void {
    this.working = { ...this.working };
  }

  private finish(save: boolean): void {
    this.renderRoot.querySelector("dialog")?.close();
    this.dispatchEvent(
      save
        ? new CustomEvent("rule-save", { detail: copy(this.working), bubbles: true, composed: true })
        : new CustomEvent("rule-cancel", { bubbles: true, composed: true }),
    );
  }

  private renderGroup(group: Rule, path: string, depth: number, parent: Rule | null): TemplateResult {
    const name = path ? `group ${path}` : "the rule";
    return html`<fieldset class="group">
      <legend>${path ? `Group ${path}` : "Rule"}</legend>
      <label>
        Match when
        <select
          aria-label="Operator of ${name}"
          .value=${group.operator}
          @change=${(e: Event) => {
            group.operator = (e.target as HTMLSelectElement).value as "and" | "or";
            this.touch();
          }}
        >
          <option value="and" ?selected=${group.operator === "and"}>ALL conditions hold (AND)</option>
          <option value="or" ?selected=${group.operator === "or"}>ANY condition holds (OR)</option>
        </select>
      </label>
      <ol>
        ${group.conditions.map((item, index): TemplateResult => {
          const at = path ? `${path}.${index + 1}` : `${index + 1}`;
          return html`<li>
            ${isGroup(item) ? this.renderGroup(item, at, depth + 1, group) : this.renderCondition(item, at, group, index)}
          </li>`;
        })}
      </ol>
      <div class="actions">
        <button class="btn" @click=${() => {
          group.conditions.push(this.blankCondition());
          this.touch();
        }}>Add condition${path ? ` to group ${path}` : ""}</button>
        ${depth < MAX_DEPTH
          ? html`<button class="btn" @click=${() => {
              group.conditions.push({ operator: "and", conditions: [this.blankCondition()] });
              this.touch();
            }}>Add group</button>`
          : nothing}
        ${parent
          ? html`<button class="btn" @click=${() => {
              parent.conditions.splice(parent.conditions.indexOf(group), 1);
              this.touch();
            }}>Remove group ${path}</button>`
          : nothing}
      </div>
    </fieldset>`;
  }

  private renderCondition(condition: Condition, at: string, group: Rule, index: number) {
    const select = (label: string, choices: Choice[], value: string, set: (v: string) => void) => html`<label>
      <span class="visually-hidden">${label} of condition ${at}</span>
      <span aria-hidden="true">${label}</span>
      <select .value=${value} @change=${(e: Event) => {
        set((e.target as HTMLSelectElement).value);
        this.touch();
      }}>
        ${choices.map((c) => html`<option value=${c.value} ?selected=${c.value === value}>${c.label}</option>`)}
      </select>
    </label>`;
    return html`<div class="condition">
      ${select("Platform field", this.platformFields, condition.platformField, (v) => (condition.platformField = v))}
      <span aria-hidden="true" class="eq">=</span>
      ${select("Dynamics column", this.columns, condition.dynamicsField, (v) => (condition.dynamicsField = v))}
      <button class="btn" aria-label="Remove condition ${at}" @click=${() => {
        group.conditions.splice(index, 1);
        this.touch();
      }}>Remove</button>
    </div>`;
  }

  render() {
    return html`<dialog aria-labelledby="rule-title" @cancel=${(e: Event) => {
      e.preventDefault();
      this.finish(false);
    }}>
      <h3 id="rule-title">${this.heading}</h3>
      <p class="hint">A record matches when the rule holds: each condition compares a platform field with a
      Dynamics column.</p>
      ${this.renderGroup(this.working, "", 1, null)}
      <div class="foot">
        <button class="btn" @click=${() => this.finish(false)}>Cancel</button>
        <button class="btn primary" ?disabled=${this.working.conditions.length === 0} @click=${() => this.finish(true)}>
          Apply rule
        </button>
      </div>
    </dialog>`;
  }

  static styles = [
    base,
    css`
      dialog { width: min(48rem, calc(100vw - 1rem)); max-height: calc(100dvh - 1rem); border: 1px solid var(--line);
        border-radius: 12px; color: var(--ink); padding: 1rem; }
      dialog::backdrop { background: rgb(20 20 30 / 45%); }
      h3 { margin-top: 0; }
      .hint { color: var(--muted); }
      .group { border: 1px solid var(--line); border-radius: 8px; margin: 0.5rem 0; padding: 0.5rem 0.75rem; }
      ol { padding-left: 1.25rem; }
      li { margin: 0.4rem 0; }
      .condition { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: end; }
      .condition label { display: grid; gap: 0.15rem; font-size: 0.9rem; }
      select { padding: 0.3rem; border: 1px solid #6b6b75; border-radius: 6px; max-width: 16rem; }
      .eq { padding-bottom: 0.4rem; }
      .actions, .foot { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.5rem; }
      .foot { justify-content: flex-end; }
    `,
  ];
}

customElements.define("rule-builder", RuleBuilder);
