// PLACEHOLDER: Step 4 of the setup window. Replace this element's body; keep its tag (step4-users), its
// properties (stepProperties) and report edits with emitChange(this, "<section>", value).
// The contract: src/steps/contract.ts and web/README.md "Steps".
import { LitElement, html } from "lit";
import type { Api } from "../api/client";
import { stepProperties, type Catalog, type Connection, type DynamicsConfig, type FieldProblem } from "./contract";
import { base } from "../ui/styles";

export class Step4Placeholder extends LitElement {
  static properties = stepProperties;
  declare config: DynamicsConfig;
  declare catalog: Catalog;
  declare api: Api;
  declare problems: FieldProblem[];
  declare connection: Connection | null;

  render() {
    return html`<p>This step is not built yet; the saved configuration keeps its current values.</p>`;
  }

  static styles = [base];
}

customElements.define("step4-users", Step4Placeholder);
