// The standalone page the Function App serves at "/": the element, signed in through the devhost's
// development sign-in when this tab has used it. In the platform the host page creates the element and
// gives it its own token provider; this file is not part of that embedding.
import { DEV_SIGN_IN_PATH, devIdentity, devTokenProvider } from "./auth";
import "./dynamics-integration-settings";

const element = document.querySelector("dynamics-integration-settings");
if (element) {
  const identity = devIdentity();
  element.signInUrl = DEV_SIGN_IN_PATH;
  if (identity) {
    element.signedInAs = `${identity.user} (${identity.role}) in ${identity.workspace}`;
    element.role = identity.role;
    element.tokenProvider = devTokenProvider(identity);
  }
}
