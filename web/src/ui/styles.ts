import { css } from "lit";

// Colours chosen for WCAG AA contrast on white (text >= 4.5:1, controls >= 3:1).
export const base = css`
  :host {
    --ink: #1b1b1f;
    --muted: #4a4a55;
    --line: #c9c9d3;
    --surface: #ffffff;
    --canvas: #f4f5f8;
    --primary: #0b5cad;
    --primary-ink: #ffffff;
    --ok: #0a6b36;
    --warn: #8a5300;
    --bad: #b3261e;
    --focus: #1a73e8;
    color: var(--ink);
    font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  }
  *, *::before, *::after { box-sizing: border-box; }
  button, input, select { font: inherit; }
  :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
  .btn {
    border: 1px solid var(--primary); background: var(--surface); color: var(--primary);
    border-radius: 6px; padding: 0.4rem 0.9rem; cursor: pointer; min-height: 2.25rem;
  }
  .btn.primary { background: var(--primary); color: var(--primary-ink); }
  .btn:disabled { border-color: var(--line); color: var(--muted); background: var(--canvas); cursor: default; }
  .visually-hidden {
    position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
  }
  .error { color: var(--bad); }
`;
