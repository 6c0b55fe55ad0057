// The API client: openapi-fetch typed by schema.d.ts, which openapi-typescript generates from the served
// OpenAPI document (docs/openapi.json). Nothing here declares a request or response shape by hand.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

/** What the host page gives the component: a function answering the platform caller token to send. */
export type TokenProvider = () => string | Promise<string>;

export function createApi(baseUrl: string, tokenProvider: TokenProvider) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await tokenProvider()}`);
      return request;
    },
    // openapi-fetch rethrows a failed fetch (offline, DNS, connection reset) unless onError answers; every
    // caller already shows a problem's words, so answer one instead of leaving them stuck on a throw.
    onError() {
      return new Response(JSON.stringify(NETWORK_PROBLEM), {
        status: 503,
        headers: { "Content-Type": "application/problem+json" },
      });
    },
  });
  return client;
}

const NETWORK_PROBLEM = {
  title: "Network error",
  status: 503,
  detail: "The request did not reach the server (the network or the server is unavailable). Try again.",
};

export type Api = ReturnType<typeof createApi>;

/** An RFC 9457 problem as the API renders it (errors point at the offending member). */
export interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  errors?: { pointer: string; message: string }[];
  [extra: string]: unknown;
}

/** The words to show for a failed call: the problem's detail, else its title, else the status. */
export function problemText(problem: unknown, response?: Response): string {
  const p = (problem ?? {}) as Problem;
  return p.detail || p.title || `The request failed (${response?.status ?? "no answer"}).`;
}

/** The workspace a platform caller token names (its `workspace_id` claim), read without verifying it:
 * only to tell this tab's drafts apart. "" when the token is not a JWT carrying one. */
export function tokenWorkspace(token: string): string {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload)) as { workspace_id?: unknown };
    return typeof claims.workspace_id === "string" ? claims.workspace_id : "";
  } catch {
    return "";
  }
}
