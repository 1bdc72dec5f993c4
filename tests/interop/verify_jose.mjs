// Verify a Tessera authorization token as node services do, with `jose`'s
// createRemoteJWKSet on the published JWKS.
// Usage: node verify_jose.mjs ISSUER AUDIENCE TOKEN
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, audience, token] = process.argv.slice(2);
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(token, jwks, {
  issuer,
  audience,
  algorithms: ["RS256"],
});
if (protectedHeader.alg !== "RS256" || payload.token !== "auth") {
  throw new Error("unexpected token");
}
console.log(JSON.stringify(payload));
