// Local development only: the sign-in page of the devhost (/_devhost/sign-in, served only while the
// development token mode is on) keeps the chosen workspace, user and role in this tab's sessionStorage;
// tokens come from the devhost's token endpoint and are renewed before they expire. In the platform the
// host page gives the component its own token provider instead and none of this runs.
import type { TokenProvider } from "./api/client";

export const DEV_IDENTITY_KEY = "dynamics-dev-identity";
export const DEV_SIGN_IN_PATH = "/_devhost/sign-in";

export interface DevIdentity {
  workspace: string;
  user: string;
  role: "admin" | "member";
}

export function devIdentity(): DevIdentity | null {
  try {
    const raw = sessionStorage.getItem(DEV_IDENTITY_KEY);
    return raw ? (JSON.parse(raw) as DevIdentity) : null;
  } catch {
    return null;
  }
}

export function devTokenProvider(identity: DevIdentity): TokenProvider {
  let token = "";
  let expiresAt = 0;
  return async () => {
    if (token && Date.now() < expiresAt - 60_000) return token;
    const response = await fetch("/_devhost/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(identity),
    });
    if (!response.ok) throw new Error(`development sign-in refused (${response.status})`);
    const body = (await response.json()) as { token: string; expiresIn: number };
    token = body.token;
    expiresAt = Date.now() + body.expiresIn * 1000;
    return token;
  };
}
