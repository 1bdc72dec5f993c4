#!/usr/bin/env node
// openid-client (panva) as a relying party of Tessera, run by
// tests/api/interop.rs: discovery, code + PKCE, ID token validation (with
// the JWKS), userinfo, refresh with rotation, client credentials, token
// exchange and revocation.
//
// Protocol (NDJSON on stdout, one JSON object per line; human notes on stderr):
//   1. line 1: {"step":"authorization_url","url":"http://127.0.0.1:PORT/oauth2/authorize?..."}
//   2. the harness logs in / follows that URL and writes the full callback URL
//      (redirect_uri?code=...&state=...&iss=...) as ONE line on stdin
//      (or pass it via CALLBACK_URL env to skip stdin — only useful together
//      with fixed STATE/NONCE/CODE_VERIFIER env values).
//   3. the script then does: code exchange, userinfo, refresh x2, reuse of the
//      old refresh token (must be refused), userinfo, client_credentials,
//      [optional: token exchange + revocation with EXTRA=1], and prints a
//      final {"step":"summary","ok":bool,...} line. Exit code 0 iff ok.
//
// Env:
//   ISSUER            default http://127.0.0.1:8080   (must equal discovery "issuer" after URL normalisation)
//   CLIENT_ID         default tessera-test
//   CLIENT_SECRET     default secret
//   REDIRECT_URI      default http://127.0.0.1:9999/callback
//   SCOPE             default "openid profile email offline_access"
//   AUTH_METHOD       post (default, openid-client's own default) | basic
//   CC_CLIENT_ID / CC_CLIENT_SECRET   client for client_credentials (defaults to CLIENT_ID/SECRET)
//   CC_SCOPE          optional scope for client_credentials
//   VERIFY_SIGNATURES 1 (default) -> enableNonRepudiationChecks: fetch jwks_uri and verify ID token RS256 signatures
//   EXTRA             1 -> also token exchange (RFC 8693) and revocation
//   OPENID_CLIENT_MODULE  module specifier/path for openid-client if it isn't resolvable
//                     from this file's directory, e.g. /tmp/oc/node_modules/openid-client/build/index.js
//
// Node >= 20.

import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const spec = process.env.OPENID_CLIENT_MODULE ?? 'openid-client';
const client = await import(spec.startsWith('/') ? pathToFileURL(spec).href : spec);

const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const ISSUER = env('ISSUER', 'http://127.0.0.1:8080');
const CLIENT_ID = env('CLIENT_ID', 'tessera-test');
const CLIENT_SECRET = env('CLIENT_SECRET', 'secret');
const REDIRECT_URI = env('REDIRECT_URI', 'http://127.0.0.1:9999/callback');
const SCOPE = env('SCOPE', 'openid profile email offline_access');
const AUTH_METHOD = env('AUTH_METHOD', 'post');
const CC_CLIENT_ID = env('CC_CLIENT_ID', CLIENT_ID);
const CC_CLIENT_SECRET = env('CC_CLIENT_SECRET', CLIENT_SECRET);
const CC_SCOPE = env('CC_SCOPE', undefined);
const VERIFY_SIGNATURES = env('VERIFY_SIGNATURES', '1') === '1';
const EXTRA = env('EXTRA', '0') === '1';

const results = [];
const emit = (obj) => {
  results.push(obj);
  process.stdout.write(JSON.stringify(obj) + '\n');
};
const note = (...a) => console.error('[openid-client]', ...a);

// Turn any thrown error into plain JSON (keeps the OAuth error code / WWW-Authenticate challenges).
function errJson(err) {
  const o = { name: err?.name, message: err?.message, code: err?.code };
  if (err instanceof client.ResponseBodyError) {
    Object.assign(o, { status: err.status, error: err.error, error_description: err.error_description });
  } else if (err instanceof client.WWWAuthenticateChallengeError) {
    Object.assign(o, { status: err.status, challenges: err.cause });
  } else if (err instanceof client.AuthorizationResponseError) {
    Object.assign(o, { error: err.error, error_description: err.error_description });
  } else if (err?.cause instanceof Response) {
    // e.g. OAUTH_RESPONSE_IS_NOT_CONFORM / OAUTH_RESPONSE_IS_NOT_JSON carry the raw Response
    Object.assign(o, {
      status: err.cause.status,
      content_type: err.cause.headers.get('content-type'),
      location: err.cause.headers.get('location') ?? undefined,
    });
  } else if (err?.cause !== undefined) {
    try {
      o.cause = JSON.parse(JSON.stringify(err.cause, (k, v) => (v instanceof URL ? v.href : v)));
    } catch {
      o.cause = String(err.cause);
    }
    if (err.cause?.message) o.cause_message = err.cause.message;
    if (err.cause?.code) o.cause_code = err.cause.code;
  }
  return o;
}

// Run one step; record {step, ok, ...data} or {step, ok:false, error}.
async function step(name, fn, { expectFailure = false, required = true } = {}) {
  try {
    const data = await fn();
    const ok = !expectFailure;
    // keys starting with "_" (raw token responses) are kept out of the output
    const pub = Object.fromEntries(Object.entries(data ?? {}).filter(([k]) => !k.startsWith('_')));
    emit({ step: name, ok, required, ...(expectFailure ? { unexpected: 'call succeeded but was expected to fail' } : {}), ...pub });
    return data;
  } catch (err) {
    const ok = expectFailure ? err instanceof client.ResponseBodyError && err.error === 'invalid_grant' : false;
    emit({ step: name, ok, required, error: errJson(err) });
    if (!expectFailure && required) throw Object.assign(new Error(`step ${name} failed`), { handled: true });
    return undefined;
  }
}

function pickAuth(secret) {
  switch (AUTH_METHOD) {
    case 'post':
      return client.ClientSecretPost(secret); // body: client_id + client_secret
    case 'basic':
      return client.ClientSecretBasic(secret); // Authorization: Basic b64(formUrlEncode(id):formUrlEncode(secret))
    default:
      throw new Error(`AUTH_METHOD must be post|basic, got ${AUTH_METHOD}`);
  }
}

const tokenSummary = (t) => ({
  token_type: t.token_type, // already lower-cased by oauth4webapi
  expires_in: t.expires_in,
  expiresIn: t.expiresIn(),
  scope: t.scope,
  has_access_token: typeof t.access_token === 'string',
  has_refresh_token: typeof t.refresh_token === 'string',
  has_id_token: typeof t.id_token === 'string',
  issued_token_type: t.issued_token_type,
  id_token_claims: t.claims(), // validated claims (undefined if no id_token)
});

async function readLine(prompt) {
  if (process.env.CALLBACK_URL) return process.env.CALLBACK_URL;
  note(prompt);
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    const t = line.trim();
    if (t) {
      rl.close();
      return t;
    }
  }
  throw new Error('stdin closed before a callback URL was received');
}

async function main() {
  // ---- 1. discovery over plain http -------------------------------------------------
  // discovery(server, clientId, metadata|clientSecret, clientAuth, options)
  // GETs `${ISSUER}/.well-known/openid-configuration` and requires
  // new URL(body.issuer).href === new URL(ISSUER).href.
  let config;
  await step('discovery', async () => {
    config = await client.discovery(
      new URL(ISSUER),
      CLIENT_ID,
      { client_secret: CLIENT_SECRET /*, id_token_signed_response_alg: 'RS256' */ },
      pickAuth(CLIENT_SECRET),
      { execute: [client.allowInsecureRequests], timeout: 10 },
    );
    if (VERIFY_SIGNATURES) client.enableNonRepudiationChecks(config); // verify ID token JWS via jwks_uri
    const md = config.serverMetadata();
    return {
      issuer: md.issuer,
      authorization_endpoint: md.authorization_endpoint,
      token_endpoint: md.token_endpoint,
      userinfo_endpoint: md.userinfo_endpoint,
      revocation_endpoint: md.revocation_endpoint,
      jwks_uri: md.jwks_uri,
      id_token_signing_alg_values_supported: md.id_token_signing_alg_values_supported,
      authorization_response_iss_parameter_supported: md.authorization_response_iss_parameter_supported,
      supportsPKCE_S256: md.supportsPKCE('S256'),
    };
  });

  // ---- 2. authorization URL (code + PKCE S256 + state + nonce) ----------------------
  const codeVerifier = env('CODE_VERIFIER', client.randomPKCECodeVerifier());
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = env('STATE', client.randomState());
  const nonce = env('NONCE', client.randomNonce());
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    // client_id and response_type=code are added automatically
  });
  emit({ step: 'authorization_url', ok: true, required: true, url: authUrl.href, state, nonce });

  // ---- 3. callback -> code exchange --------------------------------------------------
  const callback = new URL(await readLine('paste the full callback URL on stdin'));
  // redirect_uri sent to the token endpoint = callback with query+fragment stripped (URL.href form)
  const tokens = await step('authorization_code', async () => {
    const t = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce, // also makes id_token mandatory
      idTokenExpected: true,
    });
    return { tokens: tokenSummary(t), _raw: t };
  });
  const t0 = tokens._raw;
  const sub = t0.claims().sub;

  await step('userinfo_initial', async () => ({
    userinfo: await client.fetchUserInfo(config, t0.access_token, sub),
  }));

  // ---- 4. refresh twice (rotation) ---------------------------------------------------
  if (!t0.refresh_token) throw new Error('no refresh_token issued (scope offline_access?)');
  const rt0 = t0.refresh_token;
  let t1, t2;
  await step('refresh_1', async () => {
    t1 = await client.refreshTokenGrant(config, rt0);
    return { tokens: tokenSummary(t1), rotated: t1.refresh_token !== undefined && t1.refresh_token !== rt0 };
  });
  const rt1 = t1.refresh_token ?? rt0;
  await step('refresh_2', async () => {
    t2 = await client.refreshTokenGrant(config, rt1);
    return { tokens: tokenSummary(t2), rotated: t2.refresh_token !== undefined && t2.refresh_token !== rt1 };
  });

  // ---- 5. old (rotated-out) refresh token must be refused with invalid_grant ----------
  // NB: if Tessera revokes the whole grant family on reuse (RFC 9700 §4.14.2), the
  // access tokens from t2 may also die here, and the next userinfo call will fail.
  await step('refresh_reuse_refused', async () => {
    const t = await client.refreshTokenGrant(config, rt0);
    return { tokens: tokenSummary(t) };
  }, { expectFailure: true });

  // ---- 6. userinfo with the latest access token --------------------------------------
  const latest = t2 ?? t1 ?? t0;
  await step('userinfo', async () => ({
    userinfo: await client.fetchUserInfo(config, latest.access_token, sub),
  }), { required: env('USERINFO_AFTER_REUSE_REQUIRED', '1') === '1' });

  // ---- 7. client_credentials ----------------------------------------------------------
  await step('client_credentials', async () => {
    const ccConfig = new client.Configuration(
      config.serverMetadata(),
      CC_CLIENT_ID,
      { client_secret: CC_CLIENT_SECRET },
      pickAuth(CC_CLIENT_SECRET),
    );
    client.allowInsecureRequests(ccConfig);
    const t = await client.clientCredentialsGrant(ccConfig, CC_SCOPE ? { scope: CC_SCOPE } : undefined);
    return { tokens: tokenSummary(t) };
  });

  // ---- 8. optional: token exchange + revocation --------------------------------------
  if (EXTRA) {
    await step('token_exchange', async () => {
      const t = await client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
        // A Tessera session token, for an access token at an audience.
        subject_token: env('SESSION_TOKEN', ''),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        audience: env('EXCHANGE_AUDIENCE', 'notebooks'),
      });
      return { tokens: tokenSummary(t) };
    });
    await step('revocation', async () => {
      await client.tokenRevocation(config, latest.refresh_token ?? rt1, { token_type_hint: 'refresh_token' });
      return {};
    });
    await step('refresh_after_revocation_refused', async () => {
      const t = await client.refreshTokenGrant(config, latest.refresh_token ?? rt1);
      return { tokens: tokenSummary(t) };
    }, { expectFailure: true });
  }
}

let fatal;
try {
  await main();
} catch (err) {
  if (!err?.handled) {
    fatal = errJson(err);
    emit({ step: 'fatal', ok: false, required: true, error: fatal });
  }
}
const failed = results.filter((r) => r.required && !r.ok).map((r) => r.step);
emit({ step: 'summary', ok: failed.length === 0, failed });
process.exitCode = failed.length === 0 ? 0 : 1;
