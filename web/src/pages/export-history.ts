// Recent exports: the workspace's export jobs, newest first, a page at a time, filtered by state; each
// row's actions where they apply: cancel a job still running, retry the failed records of a finished one,
// download its per-record results (CSV or NDJSON).
//
// A download asks the API for the file's link as JSON (Accept: application/json) and then navigates to it:
// the bearer token cannot ride on a navigation, fetch cannot read a 302's Location, and following the
// redirect with fetch would need CORS on Blob Storage. A navigation to the link needs none of that.
import { LitElement, css, html, nothing } from "lit";
import type { Api, Schemas } from "../api/client";
import { problemText } from "../api/client";
import { base } from "../ui/styles";
import { CANCELLABLE, ENDED, RETRYABLE, STATE_LABELS, type State } from "./job-states";

type Job = Schemas["ExportStatus"];
type Format = "csv" | "ndjson";

export const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
const POLL_MS = 1000;
// The states that change by themselves soon (a paused job waits for a person, so it is not polled).
const MOVING: State[] = ["queued", "running", "cancelling"];
// The states the filter offers, in the order a person looks for them.
const FILTER_STATES: State[] = [
  "running",
  "queued",
  "succeeded",
  "partially_failed",
  "failed",
  "cancelling",
  "cancelled",
  "paused_reconnect",
  "paused_disabled",
];

/** The page size from `?historyPageSize=` (1..100), else the default; lets a test page through few jobs. */
export function pageSizeFrom(search: string): number {
  const asked = Number(new URLSearchParams(search).get("historyPageSize"));
  return Number.isInteger(asked) && asked >= 1 && asked <= MAX_PAGE_SIZE ? asked : DEFAULT_PAGE_SIZE;
}

function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

function short(jobId: string): string {
  return jobId.slice(0, 8);
}

export class ExportHistory extends LitElement {
  static properties = {
    api: { attribute: false },
    pageSize: { type: Number },
    jobs: { state: true },
    nextCursor: { state: true },
    stateFilter: { state: true },
    loading: { state: true },
    busyJobs: { state: true },
    announcement: { state: true },
    error: { state: true },
  };

  declare api: Api;
  declare pageSize: number;
  declare jobs: Job[];
  declare nextCursor: string | null;
  declare stateFilter: State | "";
  declare loading: boolean;
  declare busyJobs: Set<string>;
  declare announcement: string;
  declare error: string;
  private timer: number | undefined;
  private loads = 0;

  constructor() {
    super();
    this.pageSize = DEFAULT_PAGE_SIZE;
    this.jobs = [];
    this.nextCursor = null;
    this.stateFilter = "";
    this.loading = false;
    this.busyJobs = new Set();
    this.announcement = "";
    this.error = "";
  }

  connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
  }

  disconnectedCallback(): void {
    super.disconnectedCallback();
    window.clearTimeout(this.timer);
  }

  /** The first page again (after an export of the page ended, or the filter changed). */
  async refresh(): Promise<void> {
    await this.load(false);
  }

  private async load(more: boolean): Promise<void> {
    const load = ++this.loads; // a later load (another filter) wins over an earlier one still answering
    this.loading = true;
    let answer;
    try {
      answer = await this.api.GET("/api/dynamics/exports", {
        params: {
          query: {
            limit: this.pageSize,
            ...(this.stateFilter ? { state: this.stateFilter } : {}),
            ...(more && this.nextCursor ? { cursor: this.nextCursor } : {}),
          },
        },
      });
    } finally {
      if (load === this.loads) this.loading = false; // Refresh / Load more stay usable whatever happened
    }
    if (load !== this.loads) return;
    const { data, error, response } = answer;
    if (!data) {
      this.error = problemText(error, response);
      return;
    }
    this.error = "";
    this.jobs = more ? [...this.jobs, ...data.jobs] : data.jobs;
    this.nextCursor = data.nextCursor ?? null;
    if (more) this.announcement = `${this.jobs.length} exports shown.`;
    this.watch();
  }

  /** Keep the rows still moving up to date (a cancel finishing, a retry running), one status each. */
  private watch(): void {
    window.clearTimeout(this.timer);
    if (!this.jobs.some((j) => MOVING.includes(j.state))) return;
    this.timer = window.setTimeout(() => void this.refreshMoving(), POLL_MS);
  }

  private async refreshMoving(): Promise<void> {
    const moving = this.jobs.filter((j) => MOVING.includes(j.state)).slice(0, 10);
    try {
      const fresh = await Promise.all(
        moving.map(async (j) => {
          const { data } = await this.api.GET("/api/dynamics/exports/{jobId}", { params: { path: { jobId: j.jobId } } });
          return data;
        }),
      );
      for (const job of fresh) {
        if (!job) continue;
        const before = this.jobs.find((j) => j.jobId === job.jobId);
        if (before && before.state !== job.state) this.announcement = `Export ${short(job.jobId)} ${STATE_LABELS[job.state]}.`;
        this.replace(job);
      }
    } finally {
      this.watch(); // one failed round does not stop watching the rows still moving
    }
  }

  private replace(job: Job): void {
    this.jobs = this.jobs.map((j) => (j.jobId === job.jobId ? job : j));
  }

  private setBusy(jobId: string, busy: boolean): void {
    const next = new Set(this.busyJobs);
    if (busy) next.add(jobId);
    else next.delete(jobId);
    this.busyJobs = next;
  }

  private chooseState(event: Event): void {
    this.stateFilter = (event.target as HTMLSelectElement).value as State | "";
    this.nextCursor = null;
    void this.load(false);
  }

  private async cancel(job: Job): Promise<void> {
    this.setBusy(job.jobId, true);
    this.error = "";
    const { data, error, response } = await this.api.POST("/api/dynamics/exports/{jobId}/cancel", {
      params: { path: { jobId: job.jobId } },
    });
    this.setBusy(job.jobId, false);
    if (!data) {
      this.error = `Export ${short(job.jobId)} could not be cancelled: ${problemText(error, response)}`;
      return;
    }
    this.replace(data);
    this.announcement = `Export ${short(job.jobId)} ${STATE_LABELS[data.state]}.`;
    this.watch();
  }

  private async retry(job: Job): Promise<void> {
    this.setBusy(job.jobId, true);
    this.error = "";
    const { data, error, response } = await this.api.POST("/api/dynamics/exports/{jobId}/retry", {
      params: { path: { jobId: job.jobId } },
      body: {},
    });
    if (!data) {
      this.setBusy(job.jobId, false);
      this.error = `Export ${short(job.jobId)} could not be retried: ${problemText(error, response)}`;
      return;
    }
    // The new job first (newest first), the old one now naming it.
    const [fresh, old] = await Promise.all(
      [data.jobId, job.jobId].map(async (jobId) => {
        const answer = await this.api.GET("/api/dynamics/exports/{jobId}", { params: { path: { jobId } } });
        return answer.data;
      }),
    );
    this.setBusy(job.jobId, false);
    if (old) this.replace(old);
    if (fresh && !this.jobs.some((j) => j.jobId === fresh.jobId)) this.jobs = [fresh, ...this.jobs];
    this.announcement = `Retry started: export ${short(data.jobId)} sends the failed records of export ${short(job.jobId)} again.`;
    this.watch();
  }

  private async download(job: Job, format: Format): Promise<void> {
    this.error = "";
    const answer =
      format === "csv"
        ? await this.api.GET("/api/dynamics/exports/{jobId}/records.csv", {
            params: { path: { jobId: job.jobId }, header: { Accept: "application/json" } },
          })
        : await this.api.GET("/api/dynamics/exports/{jobId}/records.ndjson", {
            params: { path: { jobId: job.jobId }, header: { Accept: "application/json" } },
          });
    if (!answer.data) {
      this.error = `The ${format.toUpperCase()} file of export ${short(job.jobId)} could not be downloaded: ${problemText(answer.error, answer.response)}`;
      return;
    }
    // A navigation to the link: the file's own Content-Disposition makes it a download, the page stays.
    const link = document.createElement("a");
    link.href = answer.data.url;
    link.download = answer.data.fileName;
    link.hidden = true;
    this.renderRoot.appendChild(link);
    link.click();
    link.remove();
    this.announcement = `Downloading ${answer.data.fileName}.`;
  }

  render() {
    return html`<section aria-labelledby="history-title" class="history">
      <h3 id="history-title">Recent exports</h3>
      <div class="filters">
        <label for="history-state">State</label>
        <select id="history-state" @change=${this.chooseState}>
          <option value="" ?selected=${this.stateFilter === ""}>any state</option>
          ${FILTER_STATES.map((s) => html`<option value=${s} ?selected=${this.stateFilter === s}>${STATE_LABELS[s]}</option>`)}
        </select>
        <button class="btn" ?disabled=${this.loading} @click=${() => void this.refresh()}>Refresh</button>
      </div>
      <p role="status" class="visually-hidden" data-testid="history-status">${this.announcement}</p>
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      ${this.jobs.length
        ? html`<div class="scroll" role="region" aria-label="Exports table" tabindex="0">
            <table>
              <caption class="visually-hidden">
                The workspace's exports, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Export</th>
                  <th scope="col">State</th>
                  <th scope="col">Entity</th>
                  <th scope="col">Trigger</th>
                  <th scope="col">Records</th>
                  <th scope="col">Created</th>
                  <th scope="col">Updated</th>
                  <th scope="col">Failed</th>
                  <th scope="col">Invalid</th>
                  <th scope="col">Requested by</th>
                  <th scope="col">When</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                ${this.jobs.map((j) => this.renderRow(j))}
              </tbody>
            </table>
          </div>`
        : html`<p>${this.loading ? "Loading…" : this.stateFilter ? "No export in this state." : "No exports yet."}</p>`}
      ${this.nextCursor
        ? html`<button class="btn" ?disabled=${this.loading} @click=${() => void this.load(true)}>Load more</button>`
        : nothing}
    </section>`;
  }

  private renderRow(j: Job) {
    const busy = this.busyJobs.has(j.jobId);
    const id = j.jobId;
    return html`<tr data-job=${id}>
      <th scope="row">
        <code title=${id}><span aria-hidden="true">${short(id)}</span><span class="visually-hidden">${id}</span></code>
        ${j.dryRun ? html`<span class="tag">dry run</span>` : nothing}
      </th>
      <td>
        <span class="state ${j.state}" data-testid="state">${STATE_LABELS[j.state]}</span>
        ${j.retryOf ? html`<span class="link">retry of <code>${short(j.retryOf)}</code></span>` : nothing}
        ${j.retriedBy ? html`<span class="link">retried by <code>${short(j.retriedBy)}</code></span>` : nothing}
      </td>
      <td>${j.entity}</td>
      <td>${j.trigger}</td>
      <td class="count">${j.progress.records}</td>
      <td class="count">${j.counts.created}</td>
      <td class="count">${j.counts.updated}</td>
      <td class="count">${j.counts.failed}</td>
      <td class="count">${j.counts.invalid}</td>
      <td>${j.requestedBy}</td>
      <td><time datetime=${j.createdAt}>${when(j.createdAt)}</time></td>
      <td>
        <div class="actions">
        ${CANCELLABLE.includes(j.state)
          ? html`<button class="btn" ?disabled=${busy} aria-label="Cancel export ${id}" @click=${() => void this.cancel(j)}>
              Cancel
            </button>`
          : nothing}
        ${RETRYABLE.includes(j.state) && !j.retriedBy
          ? html`<button class="btn" ?disabled=${busy} aria-label="Retry export ${id}" @click=${() => void this.retry(j)}>
              Retry
            </button>`
          : nothing}
        ${ENDED.includes(j.state)
          ? html`<button class="btn" aria-label="Download CSV of export ${id}" @click=${() => void this.download(j, "csv")}>
                  <span aria-hidden="true">↓</span> CSV
              </button>
              <button class="btn" aria-label="Download NDJSON of export ${id}" @click=${() => void this.download(j, "ndjson")}>
                <span aria-hidden="true">↓</span> NDJSON
              </button>`
          : nothing}
        </div>
      </td>
    </tr>`;
  }

  static styles = [
    base,
    css`
      :host { display: block; }
      h3 { margin: 1.5rem 0 0.5rem; font-size: 1.1rem; }
      .filters { display: flex; flex-wrap: wrap; gap: 0.5rem 0.75rem; align-items: center; margin: 0 0 0.75rem; }
      label { font-weight: 600; }
      select { min-height: 2.25rem; border: 1px solid var(--muted); border-radius: 6px; padding: 0.25rem 0.5rem;
        background: var(--surface); color: var(--ink); max-width: 100%; }
      /* The table is wider than a phone: it scrolls inside its own box, never the page. */
      .scroll { max-width: 100%; overflow-x: auto; border: 1px solid var(--line); border-radius: 10px;
        background: var(--surface); margin: 0 0 0.75rem; }
      table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
      th, td { border-bottom: 1px solid var(--line); padding: 0.35rem 0.4rem; text-align: left; vertical-align: top; }
      thead th { background: var(--canvas); }
      tbody th { font-weight: 400; white-space: nowrap; }
      td.count { text-align: right; font-variant-numeric: tabular-nums; }
      time { white-space: nowrap; }
      .tag { display: block; color: var(--muted); font-size: 0.85rem; }
      .link { display: block; color: var(--muted); font-size: 0.85rem; white-space: nowrap; }
      .state { display: block; min-width: 6rem; }
      .state.failed, .state.partially_failed { color: var(--bad); }
      .actions { display: flex; flex-wrap: wrap; gap: 0.4rem; }
      .actions .btn { padding: 0.2rem 0.6rem; min-height: 2rem; white-space: nowrap; }
    `,
  ];
}

customElements.define("export-history", ExportHistory);

declare global {
  interface HTMLElementTagNameMap {
    "export-history": ExportHistory;
  }
}
