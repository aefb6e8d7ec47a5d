// End-to-end proof of the authorization code flow (+PKCE S256) against the test OP,
// using only Node's fetch, exactly as a non-browser test client would.
//
//   node tests/oidc/drive.mjs                      # spawns provider.mjs on a free port, stops it at the end
//   OIDC_ISSUER=http://127.0.0.1:PORT node tests/oidc/drive.mjs   # uses a running provider
//
// OIDC_REDIRECT_URI must be (one of) the redirect URIs the provider was started with
// (default http://127.0.0.1:8080/callback). Nothing needs to listen there: the code is
// read from the Location header of the last redirect.
// Exits non-zero if any check fails; last line is "N passed, N failed".

import * as crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import * as readline from 'node:readline';

const CLIENT_ID = 'studyflow';
const CLIENT_SECRET = 'studyflow-test-secret';
const REDIRECT_URI = (process.env.OIDC_REDIRECT_URI || 'http://127.0.0.1:8080/callback').split(',')[0].trim();

let passed = 0;
let failed = 0;
function check(label, ok, extra = '') {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}${extra ? ` — ${extra}` : ''}`);
}

// ---------------------------------------------------------------- provider (spawned if needed)

async function startProvider() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const child = spawn(process.execPath, [path.join(here, 'provider.mjs')], {
    env: { ...process.env, OIDC_PORT: process.env.OIDC_PORT ?? '0', OIDC_REDIRECT_URI: REDIRECT_URI },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = readline.createInterface({ input: child.stdout });
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('provider did not start in 15s')), 15000);
    child.once('exit', (code) => reject(new Error(`provider exited early (${code})`)));
    rl.once('line', (line) => {
      clearTimeout(timer);
      const m = line.match(/^oidc-provider listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      if (m) resolve(m[1]); else reject(new Error(`unexpected first line: ${line}`));
    });
  });
  return { issuer, stop: () => child.kill('SIGTERM') };
}

// ---------------------------------------------------------------- tiny cookie jar (path-aware)

class CookieJar {
  #cookies = new Map(); // `${name}|${path}` -> { name, value, path }

  store(url, res) {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') cpath = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const key = `${name}|${cpath}`;
      if (expired) this.#cookies.delete(key); else this.#cookies.set(key, { name, value, path: cpath });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const matches = [...this.#cookies.values()].filter((c) => pathname === c.path
      || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    return matches.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  names() { return [...this.#cookies.values()].map((c) => `${c.name}(${c.path})`); }
}

// One request, never following redirects; cookies stored and sent.
async function request(jar, method, url, { form, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar.header(url);
  if (cookie) h.cookie = cookie;
  let body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  jar.store(url, res);
  const text = await res.text();
  const location = res.headers.get('location');
  return { status: res.status, location: location && new URL(location, url).href, text, res };
}

function short(u) {
  const s = String(u);
  return s.length > 110 ? `${s.slice(0, 107)}...` : s;
}

// Follows redirects that stay on the OP, logging each hop; stops at the first Location
// outside the issuer (the client's redirect_uri) or at a non-redirect response.
async function follow(jar, issuer, first, log = true) {
  let r = first;
  while (r.status >= 300 && r.status < 400 && r.location && r.location.startsWith(`${issuer}/`)) {
    const next = r.location;
    r = await request(jar, 'GET', next);
    if (log) console.log(`     GET ${short(next.slice(issuer.length))} -> ${r.status}${r.location ? ` Location: ${short(r.location)}` : ''}`);
  }
  return r;
}

// ---------------------------------------------------------------- helpers

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function pkce() {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = crypto.hash('sha256', verifier, 'base64url');
  return { verifier, challenge };
}

function authUrl(issuer, { scope, state, nonce, challenge, prompt }) {
  const u = new URL(`${issuer}/auth`);
  u.search = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope,
    state,
    nonce,
    ...(challenge ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...(prompt ? { prompt } : {}),
  }).toString();
  return u.href;
}

const basic = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;

async function token(issuer, form, auth = 'basic') {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams(form);
  if (auth === 'basic') headers.authorization = basic;
  else { body.set('client_id', CLIENT_ID); body.set('client_secret', CLIENT_SECRET); }
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body });
  return { status: res.status, json: await res.json() };
}

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')), signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

async function verifyIdToken(issuer, jwt) {
  const { header, payload, signingInput, signature } = decodeJwt(jwt);
  const jwks = await (await fetch(`${issuer}/jwks`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk || header.alg !== 'RS256') return { ok: false, header, payload };
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('sha256', Buffer.from(signingInput), key, signature);
  return { ok, header, payload };
}

const pick = (o, keys) => Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));

// Runs /auth -> interaction -> (login POST) -> resume -> redirect_uri; returns the callback URL.
async function authorize(jar, issuer, { scope, prompt, login = 'inese.kalnina', password = 'test-password' }) {
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const { verifier, challenge } = pkce();
  const url = authUrl(issuer, { scope, state, nonce, challenge, prompt });
  let r = await request(jar, 'GET', url);
  console.log(`  1. GET ${short(url.slice(issuer.length))} -> ${r.status} Location: ${short(r.location)}`);
  console.log(`     cookies now: ${jar.names().join(', ')}`);
  // 303 to /interaction/:uid (login form, or consent auto-granted) ...
  r = await follow(jar, issuer, r);
  if (r.status === 200 && /action="([^"]+\/login)"/.test(r.text)) {
    const action = new URL(r.text.match(/action="([^"]+\/login)"/)[1], issuer).href;
    r = await request(jar, 'POST', action, { form: { login, password } });
    console.log(`  2. POST ${action.slice(issuer.length)} login=${login}&password=*** -> ${r.status}${r.location ? ` Location: ${short(r.location)}` : ''}`);
    r = await follow(jar, issuer, r);
  }
  return { r, state, nonce, verifier };
}

// ---------------------------------------------------------------- the run

async function main() {
  let issuer = process.env.OIDC_ISSUER?.replace(/\/$/, '');
  let stop = () => {};
  if (!issuer) ({ issuer, stop } = await startProvider());
  console.log(`issuer: ${issuer}   redirect_uri: ${REDIRECT_URI}`);

  try {
    const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    check('discovery issuer matches', disc.issuer === issuer, disc.issuer);
    check('discovery advertises S256 only', JSON.stringify(disc.code_challenge_methods_supported) === '["S256"]');
    const jwks = await (await fetch(disc.jwks_uri)).json();
    check('JWKS has an RS256 signing key', jwks.keys.some((k) => k.kty === 'RSA' && k.alg === 'RS256' && !('d' in k)), `kid=${jwks.keys[0]?.kid}`);

    // --- PKCE is enforced for the confidential client
    console.log('\n== /auth without code_challenge');
    {
      const jar = new CookieJar();
      const r = await request(jar, 'GET', authUrl(issuer, { scope: 'openid', state: 's0', nonce: 'n0' }));
      const q = r.location ? new URL(r.location).searchParams : new URLSearchParams();
      check('missing PKCE is rejected at /auth', r.location?.startsWith(REDIRECT_URI) && q.get('error') === 'invalid_request', `${q.get('error')}: ${q.get('error_description')}`);
    }

    // --- wrong password
    console.log('\n== wrong password');
    {
      const jar = new CookieJar();
      const { r } = await authorize(jar, issuer, { scope: 'openid', password: 'nope' });
      check('wrong password re-renders the form with an error', r.status === 200 && r.text.includes('invalid login or password'));
    }

    // --- main flow
    console.log('\n== code flow as inese.kalnina (scope openid profile email)');
    const jar = new CookieJar();
    const { r, state, nonce, verifier } = await authorize(jar, issuer, { scope: 'openid profile email' });
    const cb = new URL(r.location);
    check('redirected to redirect_uri with code and state', r.location.startsWith(`${REDIRECT_URI}?`) && cb.searchParams.get('state') === state && !!cb.searchParams.get('code'),
      `code=${short(cb.searchParams.get('code'))}, state ok, iss=${cb.searchParams.get('iss')}`);
    const code = cb.searchParams.get('code');

    const bad = await token(issuer, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: b64u(crypto.randomBytes(32)) });
    // A wrong verifier is rejected without consuming the code (the real exchange below still works).
    check('wrong code_verifier -> invalid_grant', bad.status === 400 && bad.json.error === 'invalid_grant', JSON.stringify(bad.json));

    const t = await token(issuer, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    check('code exchanged at /token (client_secret_basic + code_verifier)', t.status === 200 && !!t.json.id_token && !!t.json.access_token,
      `token_type=${t.json.token_type} expires_in=${t.json.expires_in} scope="${t.json.scope}" refresh_token=${t.json.refresh_token ? 'yes' : 'no'}`);
    const v = await verifyIdToken(issuer, t.json.id_token);
    console.log('     ID token header:', JSON.stringify(v.header));
    console.log('     ID token claims:', JSON.stringify(pick(v.payload, ['iss', 'sub', 'aud', 'nonce', 'preferred_username', 'name', 'email', 'email_verified', 'iat', 'exp', 'auth_time', 'amr', 'sid', 'at_hash'])));
    check('ID token RS256 signature verifies against JWKS', v.ok);
    check('ID token iss/sub/aud/nonce', v.payload.iss === issuer && v.payload.sub === 'sub-inese' && v.payload.aud === CLIENT_ID && v.payload.nonce === nonce);
    check('ID token preferred_username/email/name', v.payload.preferred_username === 'inese.kalnina' && v.payload.email === 'inese.kalnina@example.test' && !!v.payload.name);
    check('access token expires_in equals OIDC_ACCESS_TOKEN_TTL', t.json.expires_in === Number(process.env.OIDC_ACCESS_TOKEN_TTL || 300), `${t.json.expires_in}s`);
    check('ID token exp - iat equals OIDC_ID_TOKEN_TTL', v.payload.exp - v.payload.iat === Number(process.env.OIDC_ID_TOKEN_TTL || 300), `${v.payload.exp - v.payload.iat}s`);

    const ui = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${t.json.access_token}` } });
    const uij = await ui.json();
    check('userinfo (/me) with the access token', ui.status === 200 && uij.sub === 'sub-inese' && uij.preferred_username === 'inese.kalnina', JSON.stringify(uij));

    const replay = await token(issuer, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    check('replaying the same code -> invalid_grant', replay.status === 400 && replay.json.error === 'invalid_grant', JSON.stringify(replay.json));
    // RFC 6749 §4.1.2: on code reuse the OP revokes what was issued from that code.
    const ui2 = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${t.json.access_token}` } });
    check('after the replay the first access token is revoked', ui2.status === 401, `${ui2.status} ${ui2.headers.get('www-authenticate')}`);


    // --- offline_access: second flow reuses the OP session (cookie _session), consent is auto-granted
    console.log('\n== offline_access with prompt=consent (existing OP session, consent auto-granted on GET /interaction/:uid)');
    const a2 = await authorize(jar, issuer, { scope: 'openid profile email offline_access', prompt: 'consent' });
    const cb2 = new URL(a2.r.location);
    check('second code issued without a login form', cb2.searchParams.get('state') === a2.state && !!cb2.searchParams.get('code'));
    // client_secret_post works as well
    const t2 = await token(issuer, { grant_type: 'authorization_code', code: cb2.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: a2.verifier }, 'post');
    check('token response has a refresh_token (client_secret_post)', t2.status === 200 && !!t2.json.refresh_token, `scope="${t2.json.scope}"`);
    const rt = await token(issuer, { grant_type: 'refresh_token', refresh_token: t2.json.refresh_token });
    const rtClaims = rt.json.id_token ? decodeJwt(rt.json.id_token).payload : {};
    check('refresh_token grant works', rt.status === 200 && !!rt.json.access_token && rtClaims.sub === 'sub-inese',
      `new access_token, id_token sub=${rtClaims.sub}, refresh_token ${rt.json.refresh_token === t2.json.refresh_token ? 'unchanged' : 'rotated'}`);

    // --- expiry (only when the provider runs with a short access token TTL)
    const atTtl = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 300);
    if (atTtl <= 10) {
      console.log(`\n== expiry: waiting ${atTtl + 1}s for the access token to expire`);
      const fresh = rt.json.access_token;
      await new Promise((r) => { setTimeout(r, (atTtl + 1) * 1000); });
      const me = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${fresh}` } });
      check('expired access token -> 401 at /me', me.status === 401, me.headers.get('www-authenticate'));
    }

    // --- revocation
    console.log('\n== revocation');
    const currentRt = rt.json.refresh_token || t2.json.refresh_token;
    const rev = await fetch(`${issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: currentRt, token_type_hint: 'refresh_token' }),
    });
    check('POST /token/revocation -> 200', rev.status === 200);
    const rt2 = await token(issuer, { grant_type: 'refresh_token', refresh_token: currentRt });
    check('revoked refresh_token -> invalid_grant', rt2.status === 400 && rt2.json.error === 'invalid_grant', JSON.stringify(rt2.json));

    // --- RP-initiated logout
    console.log('\n== RP-initiated logout');
    const endUrl = `${disc.end_session_endpoint}?${new URLSearchParams({ id_token_hint: t.json.id_token, post_logout_redirect_uri: REDIRECT_URI, state: 'bye' })}`;
    const e1 = await request(jar, 'GET', endUrl);
    const xsrf = e1.text.match(/name="xsrf" value="([^"]+)"/)?.[1];
    const action = e1.text.match(/<form[^>]*action="([^"]+)"/)?.[1];
    console.log(`     GET /session/end?id_token_hint=...&post_logout_redirect_uri=...&state=bye -> ${e1.status} (form action=${action}, xsrf=${xsrf ? 'present' : 'missing'})`);
    const e2 = await request(jar, 'POST', new URL(action, issuer).href, { form: { xsrf, logout: 'yes' } });
    console.log(`     POST ${action} xsrf=...&logout=yes -> ${e2.status} Location: ${e2.location}`);
    check('logout redirects to post_logout_redirect_uri with state', e2.status === 303 && e2.location === `${REDIRECT_URI}?state=bye`);
    const a3 = await request(jar, 'GET', authUrl(issuer, { scope: 'openid', state: 's3', nonce: 'n3', challenge: pkce().challenge }));
    const r3 = await follow(jar, issuer, a3, false);
    check('after logout /auth asks for login again', r3.status === 200 && r3.text.includes('name="password"'));
  } finally {
    stop();
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
