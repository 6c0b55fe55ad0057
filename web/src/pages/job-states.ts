// An export's state in words, shared by the page's own job and the history table.
import type { Schemas } from "../api/client";

export type State = Schemas["ExportStatus"]["state"];

export const STATE_LABELS: Record<State, string> = {
  queued: "queued",
  running: "running",
  succeeded: "finished",
  partially_failed: "finished, some records failed",
  failed: "failed",
  paused_reconnect: "paused until Dynamics is reconnected",
  paused_disabled: "paused while Dynamics is disabled",
  cancelling: "stopping",
  cancelled: "cancelled",
};

/** States whose per-record results no longer change: their files can be downloaded. */
export const ENDED: State[] = ["succeeded", "partially_failed", "failed", "cancelled"];
/** States a cancel still stops. */
export const CANCELLABLE: State[] = ["queued", "running", "paused_reconnect", "paused_disabled"];
/** States whose failed records can be sent again. */
export const RETRYABLE: State[] = ["failed", "partially_failed"];
